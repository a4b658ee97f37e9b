"""Grants against a frozen clock: each is honoured from ``starts_at`` (inclusive) until
``expires_at`` (exclusive) or its revocation, to the second, on the very next request;
the sweeper writes one ``identity.grant.expired`` event per expired grant, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from fleet import Fleet, build_fleet
from outpost.audit.models import AuditEvent
from outpost.audit.verify import verify_chains
from outpost.clock import frozen, utcnow
from outpost.db import Database
from outpost.identity import grants
from support.grants import Member, add_member, give, given
from support.tenants import Tenant

SECOND = timedelta(seconds=1)
EXPIRED = "identity.grant.expired"


@pytest.fixture
def fleet(client: FlaskClient, tenant: Tenant) -> Fleet:
    return build_fleet(client, tenant.headers(), "A")


@pytest.fixture
def t0() -> datetime:
    """A whole second just ahead of the wall clock (tokens and the audit chain stay valid)."""
    return utcnow().replace(microsecond=0) + timedelta(seconds=2)


@pytest.fixture
def holder(db: Database, tenant: Tenant) -> Member:
    """A member with no role: whatever they reach, they reach through a grant."""
    return add_member(db, tenant, "holder", "none")


def _uses_site(client: FlaskClient, holder: Member, fleet: Fleet) -> tuple[int, int]:
    """(GET the site, GET one of its assets) as the holder."""
    site = client.get(f"/api/v1/sites/{fleet.site['id']}", headers=holder.headers)
    asset = client.get(f"/api/v1/assets/{fleet.sensor['id']}", headers=holder.headers)
    return site.status_code, asset.status_code


def _writes(client: FlaskClient, tenant: Tenant, holder: Member, fleet: Fleet, name: str) -> int:
    path = f"/api/v1/assets/{fleet.sensor['id']}"
    etag = client.get(path, headers=tenant.headers()).headers["ETag"]
    response = client.patch(path, json={"name": name}, headers={**holder.headers, "If-Match": etag})
    return response.status_code


def _grant(client: FlaskClient, tenant: Tenant, holder: Member, fleet: Fleet, **kw: Any) -> str:
    made = given(
        give(client, tenant.headers("operator"), holder.user_id, site_id=fleet.site["id"], **kw)
    )
    grant_id: str = made["id"]
    return grant_id


def _active(client: FlaskClient, tenant: Tenant, grant_id: str) -> bool:
    shown = client.get(f"/api/v1/grants/{grant_id}", headers=tenant.headers())
    active: bool = shown.get_json()["active"]
    return active


def test_a_grant_is_honoured_until_the_second_it_expires(
    client: FlaskClient, tenant: Tenant, fleet: Fleet, holder: Member, t0: datetime
) -> None:
    expires = t0 + timedelta(hours=4)
    with frozen(t0):
        grant_id = _grant(client, tenant, holder, fleet, expires_at=expires)
        assert _uses_site(client, holder, fleet) == (200, 200)

    with frozen(expires - SECOND):
        assert _uses_site(client, holder, fleet) == (200, 200)
        assert _writes(client, tenant, holder, fleet, "last minute") == 200
        assert _active(client, tenant, grant_id)

    with frozen(expires):
        assert _uses_site(client, holder, fleet) == (404, 404)
        assert not _active(client, tenant, grant_id)

    with frozen(expires + SECOND):
        assert _uses_site(client, holder, fleet) == (404, 404)
        assert _writes(client, tenant, holder, fleet, "too late") == 404
        assert client.get("/api/v1/assets", headers=holder.headers).status_code == 403
        ended = client.get("/api/v1/grants?state=ended", headers=tenant.headers()).get_json()
        assert [g["id"] for g in ended["items"]] == [grant_id]
        # ending an expired grant is a conflict, not a second end
        revoke = client.post(
            f"/api/v1/grants/{grant_id}/revoke", json={"reason": "late"}, headers=tenant.headers()
        )
        assert revoke.status_code == 409


def test_a_future_grant_is_honoured_from_the_second_it_starts(
    client: FlaskClient, tenant: Tenant, fleet: Fleet, holder: Member, t0: datetime
) -> None:
    starts = t0 + timedelta(hours=1)
    with frozen(t0):
        grant_id = _grant(client, tenant, holder, fleet, starts_at=starts, hours=2)
        assert _uses_site(client, holder, fleet) == (404, 404)

    with frozen(starts - SECOND):
        assert _uses_site(client, holder, fleet) == (404, 404)
        assert _writes(client, tenant, holder, fleet, "too early") == 404
        upcoming = client.get("/api/v1/grants?state=upcoming", headers=tenant.headers())
        assert [g["id"] for g in upcoming.get_json()["items"]] == [grant_id]

    with frozen(starts):
        assert _uses_site(client, holder, fleet) == (200, 200)

    with frozen(starts + SECOND):
        assert _uses_site(client, holder, fleet) == (200, 200)
        assert _writes(client, tenant, holder, fleet, "on time") == 200
        active = client.get("/api/v1/grants?state=active", headers=tenant.headers())
        assert [g["id"] for g in active.get_json()["items"]] == [grant_id]


def test_a_revocation_counts_from_the_request_after_it(
    client: FlaskClient, tenant: Tenant, fleet: Fleet, holder: Member, t0: datetime
) -> None:
    revoke_at = t0 + timedelta(hours=1)
    with frozen(t0):
        grant_id = _grant(client, tenant, holder, fleet)

    with frozen(revoke_at - SECOND):
        assert _uses_site(client, holder, fleet) == (200, 200)
        assert _writes(client, tenant, holder, fleet, "just before") == 200

    with frozen(revoke_at):
        revoked = client.post(
            f"/api/v1/grants/{grant_id}/revoke",
            json={"reason": "Shift over"},
            headers=tenant.headers("operator"),
        )
        assert revoked.status_code == 200, revoked.get_json()
        assert datetime.fromisoformat(revoked.get_json()["revoked_at"]) == revoke_at
        # the very next request, in the same second
        assert _uses_site(client, holder, fleet) == (404, 404)

    with frozen(revoke_at + SECOND):
        assert _uses_site(client, holder, fleet) == (404, 404)
        assert _writes(client, tenant, holder, fleet, "just after") == 404


def _expired_events(db: Database) -> list[AuditEvent]:
    with db.unit_of_work(write=False) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == EXPIRED).order_by(AuditEvent.id)
            )
        )


@pytest.mark.parametrize("batch", [500, 1])
def test_the_sweeper_records_each_expiry_once(
    client: FlaskClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    fleet: Fleet,
    holder: Member,
    t0: datetime,
    batch: int,
) -> None:
    theirs = build_fleet(client, other_tenant.headers(), "X")
    their_holder = add_member(db, other_tenant, "holder", "none")
    with frozen(t0):
        one_hour = _grant(client, tenant, holder, fleet, hours=1)
        two_hours = _grant(client, tenant, holder, fleet, hours=2)
        revoked = _grant(client, tenant, holder, fleet, hours=1)
        five_hours = _grant(client, tenant, holder, fleet, hours=5)
        standing = given(give(client, tenant.headers(), holder.user_id, "viewer", hours=None))["id"]
        elsewhere = given(
            give(
                client,
                other_tenant.headers("operator"),
                their_holder.user_id,
                site_id=theirs.site["id"],
                hours=1,
            )
        )["id"]
    with frozen(t0 + timedelta(minutes=30)):
        ended = client.post(
            f"/api/v1/grants/{revoked}/revoke", json={"reason": "No"}, headers=tenant.headers()
        )
        assert ended.status_code == 200

    with frozen(t0 + timedelta(hours=1) - SECOND):
        assert grants.record_expiries(db, batch=batch) == 0
    with frozen(t0 + timedelta(hours=2) + SECOND):
        assert grants.record_expiries(db, batch=batch) == 3
        assert grants.record_expiries(db, batch=batch) == 0
    first = _expired_events(db)
    assert sorted(e.object_id for e in first) == sorted([one_hour, two_hours, elsewhere])
    assert {(e.object_id, e.org_id) for e in first} >= {(elsewhere, other_tenant.org_id)}
    assert all(e.actor_type == "system" and e.object_type == "grant" for e in first)

    with frozen(t0 + timedelta(days=30)):
        assert grants.record_expiries(db, batch=batch) == 1
        assert grants.record_expiries(db, batch=batch) == 0
    events = _expired_events(db)
    assert [e.object_id for e in events] == [e.object_id for e in first] + [five_hours]
    assert revoked not in {e.object_id for e in events}
    assert standing not in {e.object_id for e in events}
    with db.write_engine.connect() as connection:
        assert all(report.ok for report in verify_chains(connection))


def test_the_limits_of_a_grant_hold_to_the_second(
    client: FlaskClient, db: Database, tenant: Tenant, fleet: Fleet, holder: Member, t0: datetime
) -> None:
    """Default maximum 168 h from the start; a start from 5 minutes ago to 30 days ahead."""
    operator = tenant.headers("operator")

    def codes(**kw: Any) -> list[str]:
        response = give(client, operator, holder.user_id, site_id=fleet.site["id"], **kw)
        if response.status_code == 201:
            return []
        return sorted(e["code"] for e in response.get_json()["errors"])

    week = timedelta(hours=168)
    with frozen(t0):
        assert codes(expires_at=t0 + week) == []
        assert codes(expires_at=t0 + week + SECOND) == ["grant.too_long"]
        later = t0 + timedelta(days=3)
        assert codes(starts_at=later, expires_at=later + week) == []
        assert codes(starts_at=later, expires_at=later + week + SECOND) == ["grant.too_long"]
        assert codes(starts_at=t0 - timedelta(minutes=5), hours=1) == []
        assert codes(starts_at=t0 - timedelta(minutes=5) - SECOND, hours=1) == [
            "grant.start_out_of_range"
        ]
        assert codes(starts_at=t0 + timedelta(days=30), hours=1) == []
        assert codes(starts_at=t0 + timedelta(days=30) + SECOND, hours=1) == [
            "grant.start_out_of_range"
        ]
        assert codes(expires_at=t0) == ["grant.ends_before_start"]
        assert codes(expires_at=t0 + SECOND) == []
