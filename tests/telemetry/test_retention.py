"""Retention settings, the retention job and the downsampling job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from outpost.db import Database
from outpost.telemetry import retention
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import HOUR_NS, MINUTE_NS, Point, SeriesQuery
from support.api import assert_problem, error_codes
from support.tenants import Tenant

DAY_NS = 24 * HOUR_NS


def test_retention_is_read_by_members_and_set_by_admins(
    client: FlaskClient, tenant: Tenant
) -> None:
    path = "/api/v1/telemetry/retention"
    assert client.get(path, headers=tenant.headers("viewer")).get_json() == {
        "raw_days": 30,
        "rollup_days": 730,
    }
    body = {"raw_days": 7, "rollup_days": 365}
    assert_problem(client.put(path, json=body, headers=tenant.headers("operator")), 403)
    answered = client.put(path, json=body, headers=tenant.headers())
    assert answered.status_code == 200 and answered.get_json() == body
    events = client.get(
        "/api/v1/audit?action=identity.organization.updated", headers=tenant.headers()
    )
    change = events.get_json()["items"][0]
    assert change["before"]["telemetry_raw_days"] == 30
    assert change["after"]["telemetry_raw_days"] == 7


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"raw_days": 0, "rollup_days": 30}, {"raw_days"}),
        ({"raw_days": 40, "rollup_days": 30}, {"rollup_days"}),
        ({"raw_days": 30, "rollup_days": 4000}, {"rollup_days"}),
    ],
)
def test_retention_out_of_range_is_422(
    client: FlaskClient, tenant: Tenant, body: dict[str, int], paths: set[str]
) -> None:
    refused = assert_problem(
        client.put("/api/v1/telemetry/retention", json=body, headers=tenant.headers()), 422
    )
    assert error_codes(refused) == {"telemetry.retention_out_of_range"}
    assert {e["path"] for e in refused["errors"]} == paths


def test_the_retention_job_drops_raw_points_then_rollups_per_organization(
    client: FlaskClient, tenant: Tenant, other_tenant: Tenant, db: Database, tmp_path: Path
) -> None:
    client.put(
        "/api/v1/telemetry/retention",
        json={"raw_days": 2, "rollup_days": 10},
        headers=tenant.headers(),
    )
    store = SQLiteTelemetryStore(tmp_path / "telemetry.db")
    try:
        hour = time.time_ns() // HOUR_NS * HOUR_NS
        ages = (1, 5, 20)  # days
        points = [
            Point(org, "ast_1", "value", hour - age * DAY_NS, float(age))
            for org in (tenant.org_id, other_tenant.org_id)
            for age in ages
        ]
        store.write(points)
        store.downsample(hour)
        assert retention.apply_retention(db, store) > 0

        def kept(org_id: str, resolution: str) -> list[float]:
            every = None if resolution == "raw" else HOUR_NS
            found = store.query(
                SeriesQuery(
                    org_id,
                    ("ast_1",),
                    ("value",),
                    hour - 30 * DAY_NS,
                    hour,
                    every_ns=every,
                    aggregate="max",
                    resolution=resolution,  # type: ignore[arg-type]
                )
            )
            return [value for series in found for value in series.values]

        assert kept(tenant.org_id, "raw") == [1.0]  # 5 and 20 days: past 2 days
        assert kept(tenant.org_id, "1h") == [5.0, 1.0]  # 20 days: past 10 days
        assert kept(other_tenant.org_id, "raw") == [20.0, 5.0, 1.0]  # default 30 days
    finally:
        store.close()


def test_the_downsample_job_rolls_up_settled_minutes(tmp_path: Path) -> None:
    store = SQLiteTelemetryStore(tmp_path / "telemetry.db")
    try:
        minute = time.time_ns() // MINUTE_NS * MINUTE_NS
        store.write([Point("org", "ast", "value", minute - 10 * MINUTE_NS, 1.0)])
        assert retention.downsample(store) > 0
        rolled = store.rolled_up_until()
        assert minute - 3 * MINUTE_NS <= rolled <= minute - 2 * MINUTE_NS
    finally:
        store.close()
