"""Helpers for API tests on the Flask test client: problem checks, fleets, state snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from fleet import post
from outpost.audit.models import AuditEvent
from outpost.db import Database
from outpost.inventory.models import Asset, Site

PROBLEM = "application/problem+json"

GATEWAY_CONFIG: dict[str, Any] = {
    "ip": "10.0.0.1",
    "subnet": "10.0.0.0/24",
    "upload_interval_s": 60,
    "max_controllers": 2,
    "max_bus_devices": 4,
}


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.mimetype == PROBLEM, response.mimetype
    body = response.get_json()
    assert isinstance(body, dict)
    for key in ("type", "title", "status", "detail"):
        assert key in body, (key, body)
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def error_paths(body: dict[str, Any]) -> set[str]:
    return {e["path"] for e in body.get("errors", [])}


def error_codes(body: dict[str, Any]) -> set[str]:
    return {e["code"] for e in body.get("errors", [])}


@dataclass(frozen=True)
class Fingerprint:
    """What a refused write must leave untouched, read straight from the database."""

    sites: tuple[tuple[str, int], ...]
    assets: tuple[tuple[str, int], ...]
    audit_events: int


def fingerprint(db: Database, org_id: str) -> Fingerprint:
    with db.unit_of_work(write=False) as session:
        sites = session.execute(
            select(Site.id, Site.revision).where(Site.org_id == org_id).order_by(Site.id)
        )
        assets = session.execute(
            select(Asset.id, Asset.revision).where(Asset.org_id == org_id).order_by(Asset.id)
        )
        events = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.org_id == org_id)
        )
        return Fingerprint(
            tuple((r.id, r.revision) for r in sites),
            tuple((r.id, r.revision) for r in assets),
            events or 0,
        )


@dataclass(frozen=True)
class Fleet:
    site: dict[str, Any]
    gateway: dict[str, Any]
    meter: dict[str, Any]


def make_fleet(client: FlaskClient, headers: dict[str, str], code: str = "P1") -> Fleet:
    """A site with a gateway and one meter on its bus."""
    site = post(client, "/api/v1/sites", {"name": f"Plant {code}", "code": code}, headers)
    gateway = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "gateway",
            "name": f"gateway {code}",
            "serial": f"GW-{code}",
            "config": GATEWAY_CONFIG,
        },
        headers,
    )
    meter = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "meter",
            "parent_id": gateway["id"],
            "name": f"meter {code}",
            "serial": f"M-{code}",
            "config": {"modbus_address": 1, "ct_ratio": 200, "phases": 3},
        },
        headers,
    )
    return Fleet(site, gateway, meter)
