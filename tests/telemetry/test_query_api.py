"""``/api/v1/telemetry/query``, ``/latest`` and ``/metrics``: JSON and CSV, reach (viewer,
a site grant, another tenant), and bad input as problem+json (never a 500)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleet import Fleet, build_fleet
from outpost.clock import utcnow
from outpost.db import Database
from outpost.telemetry.query_request import format_time, to_ns
from outpost.telemetry.store import NS_PER_SECOND, Point
from support.api import assert_problem
from support.grants import add_member, give, given
from support.tenants import Tenant

QUERY = "/api/v1/telemetry/query"
LATEST = "/api/v1/telemetry/latest"


@dataclass
class World:
    mine: Fleet
    far: Fleet  # the same tenant's other site
    foreign: Fleet  # another tenant's
    base: datetime  # an hour boundary two hours ago: the points start there

    def window(self, minutes: int = 4) -> dict[str, str]:
        return {
            "start": format_time(self.base),
            "end": format_time(self.base + timedelta(minutes=minutes)),
        }

    def at(self, minutes: float) -> str:
        return format_time(self.base + timedelta(minutes=minutes))


@pytest.fixture
def world(app: Flask, client: FlaskClient, tenant: Tenant, other_tenant: Tenant) -> World:
    mine = build_fleet(client, tenant.headers(), "P1")
    far = build_fleet(client, tenant.headers(), "P2")
    foreign = build_fleet(client, other_tenant.headers(), "X1")
    base = utcnow().replace(minute=0, second=0, microsecond=0, tzinfo=UTC) - timedelta(hours=2)
    start = to_ns(base)
    step = 30 * NS_PER_SECOND
    points = [
        Point(tenant.org_id, mine.inverter["id"], "ac_power_kw", start + k * step, 10.0 + k)
        for k in range(8)
    ]
    points += [
        Point(tenant.org_id, mine.reader["id"], "access_granted", start + k * step, float(k % 2))
        for k in range(3)
    ]
    points.append(Point(tenant.org_id, far.inverter["id"], "ac_power_kw", start, 50.0))
    points.append(Point(other_tenant.org_id, foreign.inverter["id"], "ac_power_kw", start, 70.0))
    app.extensions["outpost"].telemetry.write(points)
    return World(mine, far, foreign, base)


def get(client: FlaskClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    return client.get(path, query_string=params, headers=headers)


def test_a_query_as_json(client: FlaskClient, tenant: Tenant, world: World) -> None:
    inverter = world.mine.inverter["id"]
    response = get(
        client,
        QUERY,
        tenant.headers(),
        asset=inverter,
        metric="ac_power_kw",
        every="1m",
        **world.window(),
    )
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "start": world.at(0),
        "end": world.at(4),
        "every": "1m",
        "aggregate": "mean",
        "across": None,
        "resolution": "1m",
        "series": [
            {
                "asset_id": inverter,
                "metric": "ac_power_kw",
                "unit": "kW",
                "value_type": "float",
                "points": [
                    [world.at(0), 10.5],
                    [world.at(1), 12.5],
                    [world.at(2), 14.5],
                    [world.at(3), 16.5],
                ],
            }
        ],
    }


def test_across_a_site_and_its_type(client: FlaskClient, tenant: Tenant, world: World) -> None:
    response = get(
        client,
        QUERY,
        tenant.headers(),
        site=world.mine.site["id"],
        type="inverter",
        metric="ac_power_kw",
        every="2m",
        aggregate="max",
        across="sum",
        **world.window(),
    )
    body = response.get_json()
    assert (body["resolution"], body["across"]) == ("1m", "sum")
    assert body["series"] == [
        {
            "asset_id": None,
            "metric": "ac_power_kw",
            "unit": "kW",
            "value_type": "float",
            "points": [[world.at(0), 13.0], [world.at(2), 17.0]],
        }
    ]


def test_raw_booleans(client: FlaskClient, tenant: Tenant, world: World) -> None:
    response = get(client, QUERY, tenant.headers(), asset=world.mine.reader["id"], **world.window())
    series = response.get_json()["series"]
    assert series[0]["points"] == [
        [world.at(0), False],
        [world.at(0.5), True],
        [world.at(1), False],
    ]
    assert series[0]["value_type"] == "bool"


@pytest.mark.parametrize("how", ["format", "accept"])
def test_a_query_as_csv(client: FlaskClient, tenant: Tenant, world: World, how: str) -> None:
    inverter = world.mine.inverter["id"]
    params: dict[str, Any] = {
        "asset": inverter,
        "metric": "ac_power_kw",
        "every": "2m",
        **world.window(),
    }
    headers = tenant.headers()
    if how == "format":
        params["format"] = "csv"
    else:
        headers["Accept"] = "text/csv"
    response = get(client, QUERY, headers, **params)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="telemetry_') and disposition.endswith(
        '.csv"'
    )
    assert response.get_data(as_text=True).splitlines() == [
        "time,asset_id,metric,value",
        f"{world.at(0)},{inverter},ac_power_kw,11.5",
        f"{world.at(2)},{inverter},ac_power_kw,15.5",
    ]


def test_a_viewer_reads(client: FlaskClient, tenant: Tenant, world: World) -> None:
    response = get(
        client, QUERY, tenant.headers("viewer"), asset=world.mine.inverter["id"], every="1h"
    )
    assert response.status_code == 200
    assert response.get_json()["resolution"] == "1h"


def test_a_site_grant_reaches_that_site_only(
    client: FlaskClient, db: Database, tenant: Tenant, world: World
) -> None:
    member = add_member(db, tenant, "fieldtech", "none")
    given(give(client, tenant.headers(), member.user_id, "viewer", site_id=world.mine.site["id"]))
    ok = get(
        client, QUERY, member.headers, asset=world.mine.inverter["id"], every="1m", **world.window()
    )
    assert ok.status_code == 200
    assert len(ok.get_json()["series"][0]["points"]) == 4
    far = get(
        client, QUERY, member.headers, asset=world.far.inverter["id"], every="1m", **world.window()
    )
    missing = get(client, QUERY, member.headers, asset="ast_00000000000000000000000000", every="1m")
    assert assert_problem(far, 404)["title"] == assert_problem(missing, 404)["title"]
    assert_problem(get(client, QUERY, member.headers, site=world.far.site["id"]), 404)
    assert_problem(get(client, LATEST, member.headers, site=world.far.site["id"]), 404)
    mine = get(client, LATEST, member.headers, site=world.mine.site["id"], metric="ac_power_kw")
    assert [r["value"] for r in mine.get_json()["readings"]] == [17.0]


def test_another_tenants_asset_and_site_are_not_found(
    client: FlaskClient, tenant: Tenant, world: World
) -> None:
    foreign = get(client, QUERY, tenant.headers(), asset=world.foreign.inverter["id"])
    body = assert_problem(foreign, 404)
    assert world.foreign.inverter["id"] in body["detail"]
    assert "series" not in body
    assert_problem(get(client, QUERY, tenant.headers(), site=world.foreign.site["id"]), 404)
    assert_problem(get(client, LATEST, tenant.headers(), asset=world.foreign.inverter["id"]), 404)


def test_latest_values(client: FlaskClient, tenant: Tenant, world: World) -> None:
    response = get(
        client,
        LATEST,
        tenant.headers("viewer"),
        asset=[world.mine.inverter["id"], world.mine.reader["id"]],
    )
    assert response.status_code == 200
    body = response.get_json()
    assert [a["id"] for a in body["assets"]] == [world.mine.inverter["id"], world.mine.reader["id"]]
    assert body["readings"] == [
        {
            "asset_id": world.mine.inverter["id"],
            "metric": "ac_power_kw",
            "unit": "kW",
            "value_type": "float",
            "time": world.at(3.5),
            "value": 17.0,
        },
        {
            "asset_id": world.mine.reader["id"],
            "metric": "access_granted",
            "unit": "",
            "value_type": "bool",
            "time": world.at(1),
            "value": False,
        },
    ]


def test_metric_declarations(client: FlaskClient, tenant: Tenant) -> None:
    response = client.get("/api/v1/telemetry/metrics", headers=tenant.headers("viewer"))
    types = {t["type"]: t["metrics"] for t in response.get_json()["types"]}
    assert types["inverter"][0] == {
        "name": "ac_power_kw",
        "label": "AC power",
        "kind": "gauge",
        "unit": "kW",
        "value_type": "float",
        "minimum": -10,
        "maximum": 10_000,
    }
    one = client.get("/api/v1/telemetry/metrics?type=meter", headers=tenant.headers())
    assert [t["type"] for t in one.get_json()["types"]] == ["meter"]
    assert_problem(
        client.get("/api/v1/telemetry/metrics?type=toaster", headers=tenant.headers()), 422
    )


@pytest.mark.parametrize(
    "params",
    [
        {"every": "5x"},
        {"every": "0m"},
        {"every": "1.5h"},
        {"start": "yesterday"},
        {"start": "2026-11-23T10:00:00"},  # no time zone
        {"end": "NaN"},
        {"aggregate": "median"},
        {"across": "product"},
        {"format": "xml"},
        {"metric": "NaN value"},
        {"limit": "10"},
        {"asset": ["a" * 41]},
    ],
)
def test_bad_parameters_are_400(
    client: FlaskClient, tenant: Tenant, world: World, params: dict[str, Any]
) -> None:
    params = {"asset": world.mine.inverter["id"], **params}
    assert_problem(get(client, QUERY, tenant.headers(), **params), 400)


def test_too_many_asset_ids_are_400(client: FlaskClient, tenant: Tenant) -> None:
    ids = [f"ast_{n:026d}" for n in range(1001)]
    assert_problem(client.get(QUERY, query_string={"asset": ids}, headers=tenant.headers()), 400)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"metric": "voltage_l1_v"}, "telemetry.unknown_metric"),
        ({"across": "sum"}, "telemetry.across_needs_every"),
        (
            {"start": "2026-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
            "telemetry.end_before_start",
        ),
        ({"end": "2999-01-01T00:00:00Z"}, "telemetry.end_in_future"),
        ({"start": "1900-01-01T00:00:00Z", "every": "1h"}, "telemetry.start_before_epoch"),
        ({"start": "0001-01-01T00:00:00+05:00"}, "telemetry.time_out_of_range"),
        (
            {"every": "5s", "start": format_time(utcnow() - timedelta(days=8))},
            "telemetry.raw_range_too_long",
        ),
        ({"every": "1m", "start": "1999-01-01T00:00:00Z"}, "telemetry.too_many_points"),
    ],
)
def test_rule_violations_are_422(
    client: FlaskClient, tenant: Tenant, world: World, params: dict[str, Any], code: str
) -> None:
    params = {"asset": world.mine.inverter["id"], **params}
    body = assert_problem(get(client, QUERY, tenant.headers(), **params), 422)
    assert [e["code"] for e in body["errors"]] == [code]


def test_no_token_is_401(client: FlaskClient) -> None:
    assert_problem(client.get(QUERY), 401)


def test_the_routes_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    query = paths["/api/v1/telemetry/query"]["get"]
    assert {p["name"] for p in query["parameters"]} >= {
        "asset",
        "site",
        "type",
        "metric",
        "start",
        "end",
        "every",
        "aggregate",
        "across",
        "format",
    }
    assert set(query["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "422" in query["responses"]
    assert "/api/v1/telemetry/latest" in paths and "/api/v1/telemetry/metrics" in paths
