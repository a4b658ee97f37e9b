"""The ``TelemetryStore`` contract, over every implementation (SQLite, InfluxDB).

Only the protocol is used. Times are whole hours and minutes of the last few hours, so
InfluxDB's retention never drops them. Values are multiples of 0.25, so sums are exact
and every implementation must give the very numbers a plain Python model of the data
gives (``expected``), whatever it reads: raw points or rollups.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from outpost.telemetry.store import (
    ACROSS,
    AGGREGATES,
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
    Across,
    Aggregate,
    Point,
    Reading,
    Resolution,
    Series,
    SeriesQuery,
    TelemetryStore,
)

ORG = "org-acme"
OTHER_ORG = "org-other"
SECOND = NS_PER_SECOND

_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
    "sum": sum,
    "count": lambda values: float(len(values)),
    "first": lambda values: values[0],
    "last": lambda values: values[-1],
}
_ACROSS: dict[str, Callable[[list[float]], float]] = {
    "sum": sum,
    "mean": lambda values: sum(values) / len(values),
    "min": min,
    "max": max,
}


@pytest.fixture
def t0() -> int:
    """A whole hour four hours ago: the tests write into [t0, t0 + 4h), all in the past."""
    now = time.time_ns()
    return now - now % HOUR_NS - 4 * HOUR_NS


def pt(asset_id: str, metric: str, time_ns: int, value: float, org_id: str = ORG) -> Point:
    return Point(org_id, asset_id, metric, time_ns, value)


def query(
    org_id: str,
    asset_ids: Sequence[str],
    metrics: Sequence[str],
    start_ns: int,
    end_ns: int,
    **options: Any,
) -> SeriesQuery:
    return SeriesQuery(org_id, tuple(asset_ids), tuple(metrics), start_ns, end_ns, **options)


def expected(points: Sequence[Point], q: SeriesQuery) -> list[Series]:
    """What ``q`` must answer over ``points`` (written in that order), computed plainly."""
    stored: dict[tuple[str, str, int], float] = {}
    for p in points:
        if p.org_id == q.org_id and q.start_ns <= p.time_ns < q.end_ns:
            stored[(p.asset_id, p.metric, p.time_ns)] = p.value  # the last write wins
    result: list[Series] = []
    budget = q.limit
    for metric in dict.fromkeys(q.metrics):
        per_asset: list[tuple[str | None, list[tuple[int, float]]]] = []
        for asset_id in dict.fromkeys(q.asset_ids):
            rows = sorted((t, v) for (a, m, t), v in stored.items() if (a, m) == (asset_id, metric))
            if not rows:
                continue
            if q.every_ns is not None:
                windows: dict[int, list[float]] = defaultdict(list)
                for t, v in rows:
                    windows[t - t % q.every_ns].append(v)
                rows = [(w, _AGGREGATE[q.aggregate](vs)) for w, vs in sorted(windows.items())]
            per_asset.append((asset_id, rows))
        if q.across is not None and per_asset:
            combined: dict[int, list[float]] = defaultdict(list)
            for _, rows in per_asset:
                for w, v in rows:
                    combined[w].append(v)
            per_asset = [(None, [(w, _ACROSS[q.across](vs)) for w, vs in sorted(combined.items())])]
        for asset_id, rows in per_asset:
            if budget <= 0:
                return result
            rows = rows[:budget]
            budget -= len(rows)
            result.append(Series(asset_id, metric, [t for t, _ in rows], [v for _, v in rows]))
    return result


def shape(result: list[Series]) -> list[tuple[str | None, str, list[int], list[float]]]:
    return [(s.asset_id, s.metric, s.times_ns, s.values) for s in result]


def assert_answers(store: TelemetryStore, points: Sequence[Point], q: SeriesQuery) -> None:
    """``store`` answers ``q`` as ``expected`` says, values equal to the 12th digit (the
    order in which an engine adds up a mean across assets may move the last bit)."""
    want = expected(points, q)
    assert want, "the test data should give a non-empty answer"
    assert shape(store.query(q)) == [
        (asset_id, metric, times, pytest.approx(values, rel=1e-12, abs=1e-12))
        for asset_id, metric, times, values in shape(want)
    ]


def a_few_hours(t0: int, *, assets: Sequence[str], metrics: Sequence[str]) -> list[Point]:
    """Points every 50 s over [t0, t0 + 3h50m), some gaps, values multiples of 0.25."""
    points = []
    for ai, asset_id in enumerate(assets):
        for mi, metric in enumerate(metrics):
            for i in range(0, 3 * 3600 + 50 * 60, 50):
                if (i // 50 + ai) % 13 == 0:  # a hole now and then
                    continue
                value = ((i * 37 + ai * 11 + mi * 5) % 101 - 40) / 4
                points.append(pt(asset_id, metric, t0 + i * SECOND, value))
    return points


# -- writing and reading raw points --------------------------------------------------


def test_written_points_come_back_raw_in_time_order(store: TelemetryStore, t0: int) -> None:
    store.write(
        [
            pt("a1", "power", t0 + 20 * SECOND, -3.0),
            pt("a1", "power", t0, 1.5),
            pt("a1", "power", t0 + 10 * SECOND, 2.5),
            pt("a1", "power", t0 + 30 * SECOND, 9.0),  # at the end of the range: left out
            pt("a1", "power", t0 - 1, 8.0),  # before it
        ]
    )

    result = store.query(query(ORG, ["a1"], ["power"], t0, t0 + 30 * SECOND))

    assert result == [
        Series("a1", "power", [t0, t0 + 10 * SECOND, t0 + 20 * SECOND], [1.5, 2.5, -3.0])
    ]


def test_nothing_comes_back_for_unknown_assets_metrics_or_empty_ranges(
    store: TelemetryStore, t0: int
) -> None:
    store.write([pt("a1", "power", t0, 1.0)])

    assert store.query(query(ORG, ["nope"], ["power"], t0, t0 + HOUR_NS)) == []
    assert store.query(query(ORG, ["a1"], ["nope"], t0, t0 + HOUR_NS)) == []
    assert store.query(query(ORG, ["a1"], ["power"], t0 + 1, t0 + HOUR_NS)) == []
    assert store.query(query(ORG, [], ["power"], t0, t0 + HOUR_NS)) == []
    store.write([])


def test_the_same_key_replaces_so_duplicate_deliveries_are_idempotent(
    store: TelemetryStore, t0: int
) -> None:
    batch = [pt("a1", "power", t0, 1.0), pt("a1", "power", t0 + SECOND, 2.0)]
    store.write(batch)
    store.write(batch)  # delivered twice
    store.write([pt("a1", "power", t0, 5.0), pt("a1", "power", t0, 7.0)])  # last one wins

    result = store.query(query(ORG, ["a1"], ["power"], t0, t0 + HOUR_NS))

    assert result == [Series("a1", "power", [t0, t0 + SECOND], [7.0, 2.0])]
    counted = store.query(
        query(ORG, ["a1"], ["power"], t0, t0 + HOUR_NS, every_ns=HOUR_NS, aggregate="count")
    )
    assert counted == [Series("a1", "power", [t0], [2.0])]


# -- windows and aggregates ----------------------------------------------------------


def test_windows_are_aligned_to_the_epoch_stamped_with_their_start_and_empty_ones_left_out(
    store: TelemetryStore, t0: int
) -> None:
    store.write(
        [
            pt("a1", "power", t0 + 1 * MINUTE_NS, 1.0),
            pt("a1", "power", t0 + 4 * MINUTE_NS, 3.0),
            pt("a1", "power", t0 + 6 * MINUTE_NS, 10.0),
            pt("a1", "power", t0 + 16 * MINUTE_NS, 5.0),
        ]
    )

    # The range starts inside a window: that window is still stamped with its start.
    result = store.query(
        query(ORG, ["a1"], ["power"], t0 + MINUTE_NS, t0 + HOUR_NS, every_ns=5 * MINUTE_NS)
    )

    assert result == [
        Series("a1", "power", [t0, t0 + 5 * MINUTE_NS, t0 + 15 * MINUTE_NS], [2.0, 10.0, 5.0])
    ]


@pytest.mark.parametrize(
    ("aggregate", "values"),
    [
        ("mean", [2.5, 2.0]),
        ("min", [1.0, -2.0]),
        ("max", [4.0, 6.0]),
        ("sum", [7.5, 4.0]),
        ("count", [3.0, 2.0]),
        ("first", [4.0, -2.0]),
        ("last", [2.5, 6.0]),
    ],
)
def test_every_aggregate(
    store: TelemetryStore, t0: int, aggregate: Aggregate, values: list[float]
) -> None:
    store.write(
        [
            pt("a1", "power", t0 + 30 * MINUTE_NS, 2.5),
            pt("a1", "power", t0 + 10 * MINUTE_NS, 4.0),
            pt("a1", "power", t0 + HOUR_NS + 50 * MINUTE_NS, 6.0),
            pt("a1", "power", t0 + 20 * MINUTE_NS, 1.0),
            pt("a1", "power", t0 + HOUR_NS + 5 * MINUTE_NS, -2.0),
        ]
    )

    result = store.query(
        query(ORG, ["a1"], ["power"], t0, t0 + 3 * HOUR_NS, every_ns=HOUR_NS, aggregate=aggregate)
    )

    assert result == [Series("a1", "power", [t0, t0 + HOUR_NS], values)]


@pytest.mark.parametrize(
    ("across", "values"),
    [("sum", [6.0, 13.0]), ("mean", [3.0, 6.5]), ("min", [2.0, 5.0]), ("max", [4.0, 8.0])],
)
def test_across_combines_the_per_asset_window_values_into_one_series(
    store: TelemetryStore, t0: int, across: Across, values: list[float]
) -> None:
    hour = HOUR_NS
    store.write(
        [
            # a1: mean 2 in the first hour, 5 in the second
            pt("a1", "power", t0 + MINUTE_NS, 1.0),
            pt("a1", "power", t0 + 2 * MINUTE_NS, 3.0),
            pt("a1", "power", t0 + hour + MINUTE_NS, 5.0),
            # a2: mean 4 in the first hour, nothing in the second
            pt("a2", "power", t0 + 3 * MINUTE_NS, 4.0),
            # a3: nothing in the first hour, mean 8 in the second
            pt("a3", "power", t0 + hour + 2 * MINUTE_NS, 7.0),
            pt("a3", "power", t0 + hour + 3 * MINUTE_NS, 9.0),
            # other metric, asset not asked for, other organization: none of them count
            pt("a1", "energy", t0 + MINUTE_NS, 100.0),
            pt("a9", "power", t0 + MINUTE_NS, 100.0),
            pt("a1", "power", t0 + MINUTE_NS, 100.0, org_id=OTHER_ORG),
        ]
    )

    result = store.query(
        query(
            ORG,
            ["a1", "a2", "a3"],
            ["power"],
            t0,
            t0 + 2 * hour,
            every_ns=hour,
            aggregate="mean",
            across=across,
        )
    )

    assert result == [Series(None, "power", [t0, t0 + hour], values)]


def test_across_gives_one_series_per_metric_in_the_order_asked(
    store: TelemetryStore, t0: int
) -> None:
    store.write(
        [
            pt("a1", "power", t0, 1.0),
            pt("a2", "power", t0, 2.0),
            pt("a1", "energy", t0, 10.0),
            pt("a2", "energy", t0 + MINUTE_NS, 20.0),
        ]
    )

    result = store.query(
        query(
            ORG,
            ["a1", "a2"],
            ["power", "voltage", "energy"],
            t0,
            t0 + HOUR_NS,
            every_ns=MINUTE_NS,
            aggregate="max",
            across="sum",
        )
    )

    assert result == [
        Series(None, "power", [t0], [3.0]),
        Series(None, "energy", [t0, t0 + MINUTE_NS], [10.0, 20.0]),
    ]


def test_series_come_by_metric_then_asset_in_the_order_asked(
    store: TelemetryStore, t0: int
) -> None:
    store.write(
        [
            pt(asset_id, metric, t0 + offset * SECOND, float(offset))
            for asset_id in ("a", "b", "c")
            for metric in ("power", "temperature")
            for offset in (0, 5)
        ]
    )

    raw = store.query(query(ORG, ["c", "missing", "a"], ["temperature", "power"], t0, t0 + HOUR_NS))
    windows = store.query(
        query(
            ORG,
            ["c", "missing", "a"],
            ["temperature", "power"],
            t0,
            t0 + HOUR_NS,
            every_ns=MINUTE_NS,
            aggregate="sum",
        )
    )

    order = [("c", "temperature"), ("a", "temperature"), ("c", "power"), ("a", "power")]
    assert [(s.asset_id, s.metric) for s in raw] == order
    assert all(s.times_ns == [t0, t0 + 5 * SECOND] and s.values == [0.0, 5.0] for s in raw)
    assert [(s.asset_id, s.metric) for s in windows] == order
    assert all(s.times_ns == [t0] and s.values == [5.0] for s in windows)


def test_limit_caps_the_points_of_the_whole_answer(store: TelemetryStore, t0: int) -> None:
    store.write(
        [
            pt(asset_id, "power", t0 + i * MINUTE_NS, float(i))
            for asset_id in ("a1", "a2")
            for i in range(3)
        ]
    )

    raw = store.query(query(ORG, ["a1", "a2"], ["power"], t0, t0 + HOUR_NS, limit=4))
    windows = store.query(
        query(ORG, ["a2", "a1"], ["power"], t0, t0 + HOUR_NS, every_ns=MINUTE_NS, limit=5)
    )
    combined = store.query(
        query(
            ORG,
            ["a1", "a2"],
            ["power"],
            t0,
            t0 + HOUR_NS,
            every_ns=MINUTE_NS,
            across="sum",
            limit=2,
        )
    )

    minutes = [t0, t0 + MINUTE_NS, t0 + 2 * MINUTE_NS]
    assert raw == [
        Series("a1", "power", minutes, [0.0, 1.0, 2.0]),
        Series("a2", "power", [t0], [0.0]),
    ]
    assert windows == [
        Series("a2", "power", minutes, [0.0, 1.0, 2.0]),
        Series("a1", "power", minutes[:2], [0.0, 1.0]),
    ]
    assert combined == [Series(None, "power", minutes[:2], [0.0, 2.0])]


# -- latest --------------------------------------------------------------------------


def test_latest_gives_the_newest_point_of_each_asset_and_metric(
    store: TelemetryStore, t0: int
) -> None:
    assets = [f"meter-{n:02d}" for n in range(50)]
    points = [
        pt(asset_id, metric, t0 + minute * MINUTE_NS, float(n * 100 + minute))
        for n, asset_id in enumerate(assets)
        if n % 10 != 7  # meter-07, -17, ... have no data at all
        for metric in ("power", "energy", "voltage")
        for minute in range(3)
    ]
    store.write(points)
    store.write([pt("meter-00", "power", t0 - HOUR_NS, -1.0)])  # older: not the latest
    store.write([pt("meter-00", "power", t0 + 2 * MINUTE_NS, 0.5, org_id=OTHER_ORG)])

    asked = [*reversed(assets), "unknown"]
    every_metric = store.latest(ORG, asked)
    some_metrics = store.latest(ORG, asked, ["voltage", "power", "current"])

    with_data = [(n, a) for n, a in reversed(list(enumerate(assets))) if n % 10 != 7]
    newest = t0 + 2 * MINUTE_NS
    assert every_metric == [
        Reading(asset_id, metric, newest, float(n * 100 + 2))
        for n, asset_id in with_data
        for metric in ("energy", "power", "voltage")
    ]
    assert some_metrics == [
        Reading(asset_id, metric, newest, float(n * 100 + 2))
        for n, asset_id in with_data
        for metric in ("voltage", "power")  # in the order asked
    ]
    assert store.latest(ORG, ["meter-07"]) == []
    assert store.latest(ORG, []) == []
    assert store.latest(OTHER_ORG, ["meter-00", "meter-01"]) == [
        Reading("meter-00", "power", newest, 0.5)
    ]


# -- deleting ------------------------------------------------------------------------


def _three_hours(t0: int) -> list[Point]:
    return [
        pt(asset_id, "power", t0 + i * 10 * MINUTE_NS, float(i), org_id=org_id)
        for org_id in (ORG, OTHER_ORG)
        for asset_id in ("a1", "a2")
        for i in range(18)
    ]


@pytest.mark.parametrize("rolled_up", [False, True])
def test_delete_range_of_one_asset_drops_its_points_and_rollups_in_the_range(
    store: TelemetryStore, t0: int, rolled_up: bool
) -> None:
    points = _three_hours(t0)
    store.write(points)
    if rolled_up:
        store.downsample(t0 + 3 * HOUR_NS)

    store.delete_range(ORG, ["a1"], t0 + HOUR_NS, t0 + 2 * HOUR_NS)

    left = [
        p
        for p in points
        if not (
            p.org_id == ORG and p.asset_id == "a1" and t0 + HOUR_NS <= p.time_ns < t0 + 2 * HOUR_NS
        )
    ]
    assert len(left) == len(points) - 6
    for org_id in (ORG, OTHER_ORG):
        assert_answers(store, left, query(org_id, ["a1", "a2"], ["power"], t0, t0 + 3 * HOUR_NS))
        for resolution, every in (("raw", HOUR_NS), ("1m", 10 * MINUTE_NS), ("1h", HOUR_NS)):
            for aggregate in ("mean", "count", "last"):
                assert_answers(
                    store,
                    left,
                    query(
                        org_id,
                        ["a1", "a2"],
                        ["power"],
                        t0,
                        t0 + 3 * HOUR_NS,
                        every_ns=every,
                        aggregate=aggregate,
                        resolution=resolution,
                    ),
                )


@pytest.mark.parametrize("rolled_up", [False, True])
def test_delete_range_of_every_asset_leaves_other_organizations_alone(
    store: TelemetryStore, t0: int, rolled_up: bool
) -> None:
    points = _three_hours(t0)
    store.write(points)
    if rolled_up:
        store.downsample(t0 + 3 * HOUR_NS)

    store.delete_range(ORG, None, t0, t0 + 3 * HOUR_NS)

    for resolution in ("raw", "1m", "1h"):
        q = query(
            ORG,
            ["a1", "a2"],
            ["power"],
            t0,
            t0 + 3 * HOUR_NS,
            every_ns=HOUR_NS,
            resolution=resolution,
        )
        assert store.query(q) == []
        assert_answers(store, points, query(OTHER_ORG, **_same_but_org(q)))
    assert store.latest(ORG, ["a1", "a2"]) == []
    assert len(store.latest(OTHER_ORG, ["a1", "a2"])) == 2


def _same_but_org(q: SeriesQuery) -> dict[str, Any]:
    return {
        "asset_ids": q.asset_ids,
        "metrics": q.metrics,
        "start_ns": q.start_ns,
        "end_ns": q.end_ns,
        "every_ns": q.every_ns,
        "aggregate": q.aggregate,
        "resolution": q.resolution,
    }


def test_apply_retention_drops_old_raw_points_and_keeps_rollups_until_their_own_cutoff(
    store: TelemetryStore, t0: int
) -> None:
    points = [
        pt("a1", "power", t0 + i * 15 * MINUTE_NS, float(i), org_id=org_id)
        for org_id in (ORG, OTHER_ORG)
        for i in range(16)  # four per hour, hours 0 to 3
    ]
    store.write(points)
    store.downsample(t0 + 4 * HOUR_NS)

    store.apply_retention(ORG, raw_before_ns=t0 + 2 * HOUR_NS, rollups_before_ns=t0 + HOUR_NS)

    raw = store.query(query(ORG, ["a1"], ["power"], t0, t0 + 4 * HOUR_NS))
    assert raw == [
        Series(
            "a1",
            "power",
            [t0 + i * 15 * MINUTE_NS for i in range(8, 16)],
            [float(i) for i in range(8, 16)],
        )
    ]
    for resolution in ("1m", "1h"):
        hourly = store.query(
            query(
                ORG,
                ["a1"],
                ["power"],
                t0,
                t0 + 4 * HOUR_NS,
                every_ns=HOUR_NS,
                aggregate="sum",
                resolution=resolution,
            )
        )
        # Hour 0 is gone everywhere; hour 1 lives on in the rollups only.
        assert hourly == [
            Series("a1", "power", [t0 + h * HOUR_NS for h in (1, 2, 3)], [22.0, 38.0, 54.0])
        ]
    untouched = query(OTHER_ORG, ["a1"], ["power"], t0, t0 + 4 * HOUR_NS)
    assert_answers(store, points, untouched)


# -- downsampling --------------------------------------------------------------------


def _rollup_queries(t0: int, resolution: Resolution) -> list[tuple[int, Aggregate, Across | None]]:
    everies = [5 * MINUTE_NS, HOUR_NS] if resolution == "1m" else [HOUR_NS, 2 * HOUR_NS]
    return [
        (every, aggregate, across)
        for every in everies
        for aggregate in AGGREGATES
        for across in (None, *ACROSS)
        if across is None or aggregate in ("mean", "max")
    ]


def test_rolled_up_until_starts_at_zero_and_never_passes_what_downsample_was_asked(
    store: TelemetryStore, t0: int
) -> None:
    assert store.rolled_up_until() == 0
    store.write([pt("a1", "power", t0 + MINUTE_NS, 1.0), pt("a1", "power", t0 + 3 * HOUR_NS, 2.0)])

    store.downsample(t0 + 2 * HOUR_NS + 17 * MINUTE_NS)

    assert 0 < store.rolled_up_until() <= t0 + 2 * HOUR_NS + 17 * MINUTE_NS


@pytest.mark.parametrize("resolution", ["1m", "1h"])
def test_rollups_answer_like_raw_points_including_the_tail_not_rolled_up_yet(
    store: TelemetryStore, t0: int, resolution: Resolution
) -> None:
    assets, metrics = ["a1", "a2", "a3"], ["power", "energy"]
    points = a_few_hours(t0, assets=assets, metrics=metrics)
    store.write(points)

    written = store.downsample(t0 + 2 * HOUR_NS + 17 * MINUTE_NS)

    assert written > 0
    assert 0 < store.rolled_up_until() <= t0 + 2 * HOUR_NS + 17 * MINUTE_NS
    for every, aggregate, across in _rollup_queries(t0, resolution):
        options = {"every_ns": every, "aggregate": aggregate, "across": across}
        for asked in ("raw", resolution):
            q = query(ORG, assets, metrics, t0, t0 + 4 * HOUR_NS, **options, resolution=asked)
            assert_answers(store, points, q)


@pytest.mark.parametrize("resolution", ["1m", "1h"])
def test_a_late_point_in_a_rolled_up_bucket_is_picked_up_by_the_next_downsample(
    store: TelemetryStore, t0: int, resolution: Resolution
) -> None:
    points = a_few_hours(t0, assets=["a1", "a2"], metrics=["power"])
    store.write(points)
    store.downsample(t0 + 3 * HOUR_NS)
    late = [
        pt("a1", "power", t0 + 30 * MINUTE_NS + 7 * SECOND, 99.5),  # a new point
        pt("a2", "power", t0 + HOUR_NS + 50 * SECOND, -42.25),  # replaces one
        pt("a2", "power", t0 + 2 * HOUR_NS + 59 * MINUTE_NS + 59 * SECOND, 1000.0),  # a new minute
    ]
    assert late[1].time_ns in {p.time_ns for p in points if p.asset_id == "a2"}
    store.write(late)

    store.downsample(t0 + 3 * HOUR_NS)

    every = 5 * MINUTE_NS if resolution == "1m" else HOUR_NS
    for aggregate in AGGREGATES:
        q = query(
            ORG,
            ["a1", "a2"],
            ["power"],
            t0,
            t0 + 4 * HOUR_NS,
            every_ns=every,
            aggregate=aggregate,
            resolution=resolution,
        )
        assert_answers(store, [*points, *late], q)


# -- organizations -------------------------------------------------------------------


def test_organizations_never_mix_even_with_the_same_asset_ids(
    store: TelemetryStore, t0: int
) -> None:
    mine = [pt("a1", "power", t0 + i * MINUTE_NS, 1.0) for i in range(90)]
    theirs = [pt("a1", "power", t0 + i * MINUTE_NS, 2.0, org_id=OTHER_ORG) for i in range(90)]
    store.write([*mine, *theirs])
    store.downsample(t0 + HOUR_NS)

    for resolution in ("raw", "1m", "1h"):
        q = query(
            ORG,
            ["a1"],
            ["power"],
            t0,
            t0 + 2 * HOUR_NS,
            every_ns=HOUR_NS,
            aggregate="sum",
            resolution=resolution,
        )
        assert store.query(q) == [Series("a1", "power", [t0, t0 + HOUR_NS], [60.0, 30.0])]
    assert store.latest(ORG, ["a1"]) == [Reading("a1", "power", t0 + 89 * MINUTE_NS, 1.0)]

    store.delete_range(OTHER_ORG, None, t0, t0 + 2 * HOUR_NS)
    store.apply_retention(OTHER_ORG, t0 + 2 * HOUR_NS, t0 + 2 * HOUR_NS)

    assert_answers(store, mine, query(ORG, ["a1"], ["power"], t0, t0 + 2 * HOUR_NS))
    assert store.query(query(OTHER_ORG, ["a1"], ["power"], t0, t0 + 2 * HOUR_NS)) == []
