"""The telemetry query service over the real SQLite store: exact windows, across, the
resolution picked, reach (404 like missing), and every refusal code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from outpost import ids
from outpost.clock import frozen, utcnow
from outpost.db import Database
from outpost.errors import Forbidden, NotFound, RuleViolation
from outpost.identity.principal import Area, Holding, Principal
from outpost.identity.roles import BUILTIN_ROLES
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset
from outpost.inventory.schemas import AssetCreate, SiteCreate
from outpost.telemetry import query as telemetry
from outpost.telemetry.schemas import AssetSelection, TelemetryQuery
from outpost.telemetry.sqlite_store import SQLiteTelemetryStore
from outpost.telemetry.store import NS_PER_SECOND, Point
from support.tenants import Tenant, make_tenant

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def ns(moment: datetime) -> int:
    return telemetry.to_ns(moment)


@dataclass
class World:
    tenant: Tenant
    site: str
    other_site: str
    inverters: list[str]
    meter: str
    reader: str
    far_inverter: str  # on the other site
    foreign_inverter: str  # another tenant's
    store: SQLiteTelemetryStore
    db: Database

    @property
    def admin(self) -> Principal:
        found: Principal = self.tenant.admin_actor.principal
        return found

    def viewer(self) -> Principal:
        return Principal(self.tenant.org_id, "usr_viewer", "viewer", "viewer")

    def site_viewer(self) -> Principal:
        """A member with no role of their own, holding viewer on the first site only."""
        holding = Holding(BUILTIN_ROLES["viewer"], Area(site_id=self.site))
        return Principal(self.tenant.org_id, "usr_site", "none", "site", holdings=(holding,))


def _site(session: Session, tenant: Tenant, code: str) -> tuple[str, str, str]:
    """A site with a gateway and a controller; their ids."""
    actor = tenant.admin_actor
    site = inventory.create_site(
        session,
        actor,
        SiteCreate(
            name=f"Plant {code}", code=code, timezone="Europe/Paris", grid_connection_kw=500
        ),
    )
    gateway = _asset(
        session,
        tenant,
        site.id,
        None,
        "gateway",
        f"{code} gw",
        {
            "ip": "10.0.0.1",
            "subnet": "10.0.0.0/24",
            "upload_interval_s": 60,
            "max_controllers": 2,
            "max_bus_devices": 8,
        },
    )
    controller = _asset(
        session,
        tenant,
        site.id,
        gateway,
        "controller",
        f"{code} ctl",
        {"channels": 4, "ip": "10.0.0.2"},
    )
    return site.id, gateway, controller


def _asset(
    session: Session,
    tenant: Tenant,
    site_id: str,
    parent: str | None,
    type_: str,
    name: str,
    config: dict[str, Any],
) -> str:
    data = AssetCreate(
        site_id=site_id,
        parent_id=parent,
        type=type_,
        name=name,
        serial=name.replace(" ", "-"),
        config=config,
    )
    return inventory.create_asset(session, tenant.admin_actor, data).id


def _inverter(
    session: Session, tenant: Tenant, site_id: str, gateway: str, n: int, code: str
) -> str:
    config = {"modbus_address": n, "rated_power_kw": 60}
    return _asset(session, tenant, site_id, gateway, "inverter", f"{code} inv {n}", config)


@pytest.fixture
def world(db: Database, tenant: Tenant, tmp_path: Path) -> Iterator[World]:
    other = make_tenant(db, "Other Corp")
    with db.unit_of_work() as session:
        site, gateway, controller = _site(session, tenant, "P1")
        inverters = [_inverter(session, tenant, site, gateway, n, "P1") for n in (1, 2, 3)]
        meter = _asset(
            session,
            tenant,
            site,
            gateway,
            "meter",
            "P1 meter",
            {"modbus_address": 9, "ct_ratio": 100, "phases": 3},
        )
        reader = _asset(
            session,
            tenant,
            site,
            controller,
            "badge_reader",
            "P1 door",
            {"channel": 1, "door": "Main", "zone": "lobby"},
        )
        other_site, other_gateway, _ = _site(session, tenant, "P2")
        far = _inverter(session, tenant, other_site, other_gateway, 1, "P2")
        foreign_site, foreign_gateway, _ = _site(session, other, "X1")
        foreign = _inverter(session, other, foreign_site, foreign_gateway, 1, "X1")
    store = SQLiteTelemetryStore(tmp_path / "telemetry.db")
    org = tenant.org_id
    points = [
        # Inverter n: 10n + k every 30 s from 10:00 for 4 minutes.
        Point(org, inverter, "ac_power_kw", ns(T0) + k * 30 * NS_PER_SECOND, 10.0 * n + k)
        for n, inverter in enumerate(inverters, start=1)
        for k in range(8)
    ]
    points += [
        Point(org, reader, "access_granted", ns(T0) + k * 20 * NS_PER_SECOND, value)
        for k, value in enumerate((1.0, 0.0, 1.0))
    ]
    points.append(Point(org, far, "ac_power_kw", ns(T0), 99.0))
    points.append(Point(other.org_id, foreign, "ac_power_kw", ns(T0), 77.0))
    store.write(points)
    try:
        yield World(tenant, site, other_site, inverters, meter, reader, far, foreign, store, db)
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with frozen(NOW):
        yield


def run(world: World, principal: Principal | None = None, **params: Any) -> telemetry.QueryResult:
    with world.db.unit_of_work() as session:
        return telemetry.query_telemetry(
            session, world.store, principal or world.admin, TelemetryQuery.model_validate(params)
        )


def refused(world: World, principal: Principal | None = None, **params: Any) -> set[str]:
    with pytest.raises(RuleViolation) as caught:
        run(world, principal, **params)
    return {v.code for v in caught.value.violations}


def window(**extra: Any) -> dict[str, Any]:
    return {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T10:04:00Z", **extra}


# --- windows and resolution -----------------------------------------------------------


def test_one_minute_windows_per_asset_read_the_minute_rollups(world: World) -> None:
    result = run(world, asset=world.inverters[:2], metric="ac_power_kw", every="1m", **window())
    assert result.resolution == "1m"
    assert [(s.asset_id, s.unit, s.value_type) for s in result.series] == [
        (world.inverters[0], "kW", "float"),
        (world.inverters[1], "kW", "float"),
    ]
    assert result.series[0].points() == [
        ("2026-11-23T10:00:00Z", 10.5),
        ("2026-11-23T10:01:00Z", 12.5),
        ("2026-11-23T10:02:00Z", 14.5),
        ("2026-11-23T10:03:00Z", 16.5),
    ]
    assert [v for _, v in result.series[1].points()] == [20.5, 22.5, 24.5, 26.5]


def test_across_sum_over_three_inverters_of_a_site(world: World) -> None:
    result = run(
        world,
        site=world.site,
        type="inverter",
        metric="ac_power_kw",
        every="1m",
        across="sum",
        **window(),
    )
    assert len(result.series) == 1
    only = result.series[0]
    assert (only.asset_id, only.metric, only.unit) == (None, "ac_power_kw", "kW")
    assert only.points() == [
        ("2026-11-23T10:00:00Z", 61.5),
        ("2026-11-23T10:01:00Z", 67.5),
        ("2026-11-23T10:02:00Z", 73.5),
        ("2026-11-23T10:03:00Z", 79.5),
    ]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("min", 10.0), ("max", 17.0), ("sum", 108.0), ("count", 8), ("first", 10.0), ("last", 17.0)],
)
def test_every_hour_reads_the_hour_rollups(world: World, aggregate: str, expected: float) -> None:
    world.store.downsample(ns(NOW))
    result = run(
        world,
        asset=world.inverters[0],
        metric="ac_power_kw",
        every="1h",
        aggregate=aggregate,
        start="2026-11-23T09:00:00Z",
        end="2026-11-23T11:00:00Z",
    )
    assert result.resolution == "1h"
    assert result.series[0].points() == [("2026-11-23T10:00:00Z", expected)]
    assert type(result.series[0].values[0]) is type(expected)


def test_every_hour_before_the_rollups_exist_still_answers(world: World) -> None:
    result = run(world, asset=world.inverters[0], metric="ac_power_kw", every="1h", **window())
    assert result.resolution == "1h"
    assert result.series[0].points() == [("2026-11-23T10:00:00Z", 13.5)]


def test_windows_under_a_minute_read_raw_points(world: World) -> None:
    result = run(
        world,
        asset=world.inverters[2],
        metric="ac_power_kw",
        every="45s",
        aggregate="max",
        **window(),
    )
    assert result.resolution == "raw"
    # Windows aligned to the epoch: 10:00:00 (k=0,1), 10:00:45 (k=2), 10:01:30 (k=3,4) ...
    assert result.series[0].points() == [
        ("2026-11-23T10:00:00Z", 31.0),
        ("2026-11-23T10:00:45Z", 32.0),
        ("2026-11-23T10:01:30Z", 34.0),
        ("2026-11-23T10:02:15Z", 35.0),
        ("2026-11-23T10:03:00Z", 37.0),
    ]


def test_raw_points_without_every(world: World) -> None:
    result = run(world, asset=world.inverters[0], metric="ac_power_kw", **window())
    assert result.resolution == "raw"
    assert result.every is None
    assert [v for _, v in result.series[0].points()] == [10.0 + k for k in range(8)]
    assert result.series[0].points()[1][0] == "2026-11-23T10:00:30Z"


def test_the_default_range_is_the_last_24_hours(world: World) -> None:
    result = run(world, asset=world.inverters[0], every="1h")
    assert (result.start, result.end) == (NOW - timedelta(hours=24), NOW)
    assert result.series[0].points() == [("2026-11-23T10:00:00Z", 13.5)]
    assert result.as_dict()["start"] == "2026-11-22T12:00:00Z"


def test_booleans_render_as_booleans_while_a_value_is_kept(world: World) -> None:
    raw = run(world, asset=world.reader, **window())
    assert raw.series[0].value_type == "bool"
    assert [v for _, v in raw.series[0].points()] == [True, False, True]
    assert raw.series[0].unit == ""
    kept = run(world, asset=world.reader, every="1m", aggregate="min", **window())
    assert kept.series[0].points() == [("2026-11-23T10:00:00Z", False)]
    mean = run(world, asset=world.reader, every="1m", aggregate="mean", **window())
    assert mean.series[0].value_type == "float"
    assert mean.series[0].values[0] == pytest.approx(2 / 3)


def test_no_metric_named_means_every_declared_metric_and_empty_series(world: World) -> None:
    result = run(world, asset=[world.meter, world.inverters[0]], every="1m", **window())
    names = [(s.metric, s.asset_id == world.meter) for s in result.series]
    assert names == [
        ("active_power_w", True),
        ("energy_import_kwh", True),
        ("voltage_l1_v", True),
        ("ac_power_kw", False),
        ("energy_total_kwh", False),
        ("dc_voltage_v", False),
    ]
    assert [len(s.times_ns) for s in result.series] == [0, 0, 0, 4, 0, 0]


def test_named_assets_keep_their_order_and_a_site_adds_its_own(world: World) -> None:
    result = run(
        world,
        asset=[world.inverters[2], world.inverters[0]],
        site=world.site,
        type="inverter",
        metric="ac_power_kw",
        every="1m",
        **window(),
    )
    assert [s.asset_id for s in result.series] == [
        world.inverters[2],
        world.inverters[0],
        world.inverters[1],
    ]


def test_csv_lines(world: World) -> None:
    result = run(world, asset=world.reader, **window())
    assert list(telemetry.csv_lines(result)) == [
        "time,asset_id,metric,value\r\n",
        f"2026-11-23T10:00:00Z,{world.reader},access_granted,true\r\n",
        f"2026-11-23T10:00:20Z,{world.reader},access_granted,false\r\n",
        f"2026-11-23T10:00:40Z,{world.reader},access_granted,true\r\n",
    ]


# --- reach ----------------------------------------------------------------------------


def test_a_viewer_reads(world: World) -> None:
    result = run(
        world,
        world.viewer(),
        asset=world.inverters[0],
        every="1m",
        metric="ac_power_kw",
        **window(),
    )
    assert len(result.series[0].times_ns) == 4


def test_a_site_holder_reads_their_site_only(world: World) -> None:
    mine = run(world, world.site_viewer(), site=world.site, type="inverter", every="1m", **window())
    assert {s.asset_id for s in mine.series} == set(world.inverters)
    with pytest.raises(NotFound):
        run(world, world.site_viewer(), asset=world.far_inverter, **window())
    with pytest.raises(NotFound):
        run(world, world.site_viewer(), site=world.other_site, **window())


@pytest.mark.parametrize("which", ["foreign_inverter", "missing"])
def test_another_tenants_asset_is_not_found_like_a_missing_one(world: World, which: str) -> None:
    asset_id = getattr(world, which, "ast_00000000000000000000000000")
    with pytest.raises(NotFound) as caught:
        run(world, asset=[world.inverters[0], asset_id], **window())
    assert caught.value.detail == f"No asset {asset_id}."


def test_no_telemetry_read_anywhere_is_forbidden(world: World) -> None:
    nobody = Principal(world.tenant.org_id, "usr_none", "none", "nobody", holdings=())
    with pytest.raises(Forbidden):
        run(world, nobody, asset=world.inverters[0])


# --- refusals -------------------------------------------------------------------------


def test_an_undeclared_metric_is_named(world: World) -> None:
    with pytest.raises(RuleViolation) as caught:
        run(
            world,
            asset=world.inverters[0],
            metric=["ac_power_kw", "voltage_l1_v", "nonsense"],
            **window(),
        )
    found = [(v.code, v.path) for v in caught.value.violations]
    assert found == [("telemetry.unknown_metric", "metric")] * 2
    assert "'voltage_l1_v'" in caught.value.violations[0].message
    assert "'nonsense'" in caught.value.violations[1].message


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T10:00:00Z"},
            "telemetry.end_before_start",
        ),
        (
            {"start": "2026-11-23T11:00:00Z", "end": "2026-11-23T10:00:00Z"},
            "telemetry.end_before_start",
        ),
        ({"end": "2026-11-23T12:10:01Z"}, "telemetry.end_in_future"),
        ({"start": "1969-12-31T00:00:00Z", "every": "1h"}, "telemetry.start_before_epoch"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "telemetry.time_out_of_range"),
        ({"every": "367d"}, "telemetry.every_too_long"),
        ({"across": "sum"}, "telemetry.across_needs_every"),
        ({"aggregate": "max"}, "telemetry.aggregate_needs_every"),
        # raw points over more than 24 hours; raw windows over more than 7 days
        ({"start": "2026-11-22T11:59:59Z"}, "telemetry.raw_range_too_long"),
        ({"start": "2026-11-16T11:59:59Z", "every": "10s"}, "telemetry.raw_range_too_long"),
        # raw data before the 30-day raw retention
        (
            {"start": "2026-10-24T10:00:00Z", "end": "2026-10-24T11:00:00Z"},
            "telemetry.before_raw_retention",
        ),
        # 70 days of 1-minute windows of 3 inverters: 302,400 points
        ({"start": "2026-09-14T12:00:00Z", "every": "1m"}, "telemetry.too_many_points"),
    ],
)
def test_each_refusal_has_its_code(world: World, params: dict[str, Any], code: str) -> None:
    assert refused(world, site=world.site, type="inverter", **params) == {code}


def test_the_point_estimate_is_in_the_message(world: World) -> None:
    with pytest.raises(RuleViolation) as caught:
        run(
            world,
            site=world.site,
            type="inverter",
            start="2026-09-14T12:00:00Z",
            every="1m",
            metric="ac_power_kw",
        )
    assert "302,400" in caught.value.violations[0].message
    assert "across" in caught.value.violations[0].message


def test_across_counts_one_series_per_metric_in_the_estimate(world: World) -> None:
    # 69 days of 1-minute windows: 99,360 per series; three inverters would be 298,080.
    params: dict[str, Any] = {
        "site": world.site,
        "type": "inverter",
        "metric": "ac_power_kw",
        "every": "1m",
    }
    start = "2026-09-15T12:00:00Z"
    assert refused(world, start=start, **params) == {"telemetry.too_many_points"}
    result = run(world, start=start, across="sum", **params)
    assert [len(s.times_ns) for s in result.series] == [4]


def test_rollups_are_not_refused_before_the_raw_retention(world: World) -> None:
    result = run(world, asset=world.inverters[0], start="2026-09-01T00:00:00Z", every="1d")
    assert result.resolution == "1h"


def test_a_shorter_raw_retention_moves_the_horizon(world: World) -> None:
    from outpost.identity.models import Organization

    with world.db.unit_of_work() as session:
        org = session.get(Organization, world.tenant.org_id)
        assert org is not None
        org.telemetry_raw_days = 1
    assert refused(world, asset=world.inverters[0], start="2026-11-22T10:00:00Z", every="10s") == {
        "telemetry.before_raw_retention"
    }


def test_several_violations_come_together(world: World) -> None:
    codes = refused(
        world, asset=world.inverters[0], metric="nonsense", end="2026-11-24T00:00:00Z", across="max"
    )
    assert codes == {
        "telemetry.unknown_metric",
        "telemetry.end_in_future",
        "telemetry.across_needs_every",
    }


def test_assets_must_be_named(world: World) -> None:
    assert refused(world) == {"telemetry.no_assets"}
    assert refused(world, asset=world.meter, type="meter") == {"telemetry.type_without_site"}


def test_more_raw_points_than_the_cap_are_refused(world: World) -> None:
    start = ns(NOW - timedelta(hours=20))
    half_second = NS_PER_SECOND // 2
    world.store.write(
        [
            Point(world.tenant.org_id, world.meter, "active_power_w", start + i * half_second, 1.0)
            for i in range(telemetry.MAX_POINTS + 1)
        ]
    )
    assert refused(world, asset=world.meter, metric="active_power_w") == {
        "telemetry.too_many_points"
    }


def test_more_than_a_thousand_assets_are_refused(world: World) -> None:
    now = utcnow()
    with world.db.unit_of_work() as session:
        session.add_all(
            Asset(
                id=ids.new_id("ast"),
                org_id=world.tenant.org_id,
                site_id=world.other_site,
                type="badge",
                name=f"badge {i}",
                serial=f"B-{i}",
                config={"holder": "x", "zones": []},
                created_at=now,
                updated_at=now,
            )
            for i in range(telemetry.MAX_ASSETS + 1)
        )
    assert refused(world, site=world.other_site, every="1h") == {"telemetry.too_many_assets"}
    with world.db.unit_of_work() as session:
        latest = telemetry.latest_values
        with pytest.raises(RuleViolation):
            latest(session, world.store, world.admin, AssetSelection(site=world.other_site))
    # narrowed by type, the site is fine
    assert (
        run(world, site=world.other_site, type="inverter", every="1h").series[0].asset_id
        == world.far_inverter
    )


# --- latest values and declarations ---------------------------------------------------


def test_latest_values_of_a_site(world: World) -> None:
    with world.db.unit_of_work() as session:
        result = telemetry.latest_values(
            session, world.store, world.admin, AssetSelection(site=world.site)
        )
    got = [(r.asset_id, r.metric, r.unit, r.time_ns, r.value) for r in result.readings]
    last = ns(T0) + 7 * 30 * NS_PER_SECOND
    by_name = {a.id: a.name for a in result.assets}
    assert [by_name[a] for a, *_ in got] == ["P1 door", "P1 inv 1", "P1 inv 2", "P1 inv 3"]
    assert got[0] == (world.reader, "access_granted", "", ns(T0) + 40 * NS_PER_SECOND, True)
    assert got[1:] == [
        (inv, "ac_power_kw", "kW", last, 10.0 * n + 7) for n, inv in enumerate(world.inverters, 1)
    ]
    assert result.readings[1].as_dict()["time"] == "2026-11-23T10:03:30Z"


def test_latest_values_of_named_metrics_and_reach(world: World) -> None:
    with world.db.unit_of_work() as session:
        selection = AssetSelection(asset=[world.inverters[1], world.meter], metric=["ac_power_kw"])
        result = telemetry.latest_values(session, world.store, world.site_viewer(), selection)
        assert [(r.asset_id, r.value) for r in result.readings] == [(world.inverters[1], 27.0)]
        with pytest.raises(NotFound):
            telemetry.latest_values(
                session,
                world.store,
                world.site_viewer(),
                AssetSelection(asset=[world.far_inverter]),
            )
        with pytest.raises(RuleViolation):
            telemetry.latest_values(
                session,
                world.store,
                world.admin,
                AssetSelection(asset=[world.meter], metric=["ac_power_kw"]),
            )


def test_metric_declarations(world: World) -> None:
    declared = dict(telemetry.metric_declarations(world.viewer()))
    assert [m.name for m in declared["inverter"]] == [
        "ac_power_kw",
        "energy_total_kwh",
        "dc_voltage_v",
    ]
    assert telemetry.metric_declarations(world.viewer(), "meter")[0][0] == "meter"
    with pytest.raises(RuleViolation):
        telemetry.metric_declarations(world.viewer(), "toaster")


@pytest.mark.parametrize(
    ("every", "resolution"),
    [
        ("10s", "raw"),
        ("90s", "raw"),
        ("1m", "1m"),
        ("15m", "1m"),
        ("90m", "1m"),
        ("1h", "1h"),
        ("120m", "1h"),
        ("1d", "1h"),
    ],
)
def test_resolution_for(every: str, resolution: str) -> None:
    every_ns = telemetry.parse_every(every) // timedelta(microseconds=1) * 1000
    assert telemetry.resolution_for(every_ns) == resolution


def test_window_count_is_epoch_aligned() -> None:
    minute = 60 * NS_PER_SECOND
    assert telemetry.window_count(0, 4 * minute, minute) == 4
    assert telemetry.window_count(30 * NS_PER_SECOND, 4 * minute, minute) == 4
    assert telemetry.window_count(30 * NS_PER_SECOND, 4 * minute + 1, minute) == 5
