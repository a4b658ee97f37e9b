"""The audit log: one event per change in the same transaction, the chain, query, export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select, text, update

from fleet import build_fleet
from outpost.audit.models import AuditEvent
from outpost.audit.verify import verify_chains


def events(db, **where):
    with db.unit_of_work(write=False) as session:
        query = select(AuditEvent).order_by(AuditEvent.org_id, AuditEvent.seq)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        return list(session.scalars(query))


def test_change_records_actor_before_after_request_and_reason(client, tenant, db):
    fleet = build_fleet(client, tenant.headers())
    r = client.patch(
        f"/api/v1/assets/{fleet.sensor['id']}",
        json={"config": {"sampling_interval_s": 15}},
        headers={
            **tenant.headers("operator"),
            "If-Match": '"1"',
            "X-Request-Id": "req-42",
            "X-Change-Reason": "tuning",
            "User-Agent": "pytest-agent",
        },
    )
    assert r.status_code == 200 and r.headers["X-Request-Id"] == "req-42"
    [event] = events(db, object_id=fleet.sensor["id"], action="inventory.asset.updated")
    assert (
        event.actor_type == "token"
        and "operator@" in event.actor_label
        and "operator token" in event.actor_label
    )
    assert (
        event.request_id == "req-42"
        and event.reason == "tuning"
        and event.user_agent == "pytest-agent"
    )
    assert event.source_ip
    assert json.loads(event.before)["config"]["sampling_interval_s"] == 30
    assert json.loads(event.after)["config"]["sampling_interval_s"] == 15
    assert json.loads(event.after)["revision"] == 2
    assert event.occurred_at.tzinfo is not None


def test_refused_change_leaves_no_event(client, tenant, db):
    fleet = build_fleet(client, tenant.headers())
    before = len(events(db))
    r = client.patch(
        f"/api/v1/assets/{fleet.sensor['id']}",
        json={"config": {"channel": 99}},
        headers={**tenant.headers(), "If-Match": '"1"'},
    )
    assert r.status_code == 422
    assert len(events(db)) == before


def test_secrets_never_in_snapshots(client, tenant, db):
    r = client.post("/api/v1/tokens", json={"name": "ci"}, headers=tenant.headers())
    secret = r.get_json()["token"]
    for event in events(db):
        blob = f"{event.before}{event.after}"
        assert secret not in blob and "secret_hash" not in blob and "password_hash" not in blob
        assert "$argon2id$" not in blob


def test_chain_is_intact_then_detects_alteration_removal_and_reordering(client, tenant, db):
    build_fleet(client, tenant.headers())
    with db.write_engine.connect() as connection:
        assert all(r.ok for r in verify_chains(connection))
    target = events(db, org_id=tenant.org_id)[5]

    with db.unit_of_work() as session:
        session.execute(
            update(AuditEvent).where(AuditEvent.id == target.id).values(reason="forged")
        )
    with db.write_engine.connect() as connection:
        [report] = [r for r in verify_chains(connection) if r.org_id == tenant.org_id]
    assert not report.ok and report.broken_seq == target.seq and "altered" in report.problem

    with db.unit_of_work() as session:
        session.execute(
            update(AuditEvent).where(AuditEvent.id == target.id).values(reason=target.reason)
        )
        session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": target.id})
    with db.write_engine.connect() as connection:
        [report] = [r for r in verify_chains(connection) if r.org_id == tenant.org_id]
    assert not report.ok and report.broken_seq == target.seq + 1


def test_removing_the_last_events_is_detected(client, tenant, db):
    build_fleet(client, tenant.headers())
    last = events(db, org_id=tenant.org_id)[-1]
    with db.unit_of_work() as session:
        session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": last.id})
    with db.write_engine.connect() as connection:
        [report] = [r for r in verify_chains(connection) if r.org_id == tenant.org_id]
    assert not report.ok and "tip" in report.problem


def test_swapping_two_events_is_detected(client, tenant, db):
    build_fleet(client, tenant.headers())
    a, b = events(db, org_id=tenant.org_id)[3:5]
    with db.unit_of_work() as session:
        for source, dest in ((a, b), (b, a)):
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.id == source.id)
                .values(
                    after=dest.after,
                    before=dest.before,
                    object_id=dest.object_id,
                    action=dest.action,
                )
            )
    with db.write_engine.connect() as connection:
        [report] = [r for r in verify_chains(connection) if r.org_id == tenant.org_id]
    assert not report.ok and report.broken_seq == a.seq


def test_api_filters_and_cursor(client, tenant, other_tenant):
    fleet = build_fleet(client, tenant.headers())
    build_fleet(client, other_tenant.headers())
    h = tenant.headers("viewer")
    by_object = client.get(f"/api/v1/audit?object_id={fleet.meter['id']}", headers=h).get_json()
    assert [e["action"] for e in by_object["items"]] == ["inventory.asset.created"]
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/audit?limit=4" + (f"&cursor={cursor}" if cursor else ""), headers=h
        ).get_json()
        seen.extend(e["seq"] for e in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    everything = client.get("/api/v1/audit?limit=1000", headers=h).get_json()["items"]
    assert len(seen) == len(everything)
    assert fleet.meter["id"] not in json.dumps(
        client.get("/api/v1/audit?limit=1000", headers=other_tenant.headers()).get_json()
    )
    assert client.get("/api/v1/audit?since=2020-01-01", headers=h).status_code == 400
    recent = client.get(
        "/api/v1/audit?since=2020-01-01T00:00:00Z&action=inventory.site.created", headers=h
    ).get_json()["items"]
    assert len(recent) == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export(client, tenant, fmt):
    build_fleet(client, tenant.headers())
    r = client.get(f"/api/v1/audit/export?format={fmt}", headers=tenant.headers("viewer"))
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    total = len(
        client.get("/api/v1/audit?limit=1000", headers=tenant.headers()).get_json()["items"]
    )
    if fmt == "jsonl":
        rows = [json.loads(line) for line in body.splitlines()]
        assert [row["seq"] for row in rows] == list(range(1, total + 1))
    else:
        rows = list(csv.DictReader(io.StringIO(body)))
        assert len(rows) == total and rows[0]["action"] == "identity.organization.created"
    assert (
        client.get("/api/v1/audit/export?format=xml", headers=tenant.headers()).status_code == 400
    )
