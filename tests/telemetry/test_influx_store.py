"""What is particular to the InfluxDB store: escaping, error mapping, bookkeeping.

The behaviour every store shares is proven by the contract suite; these tests run
against a real ``influxd`` (``influx_url``) except where an HTTP status InfluxDB cannot
be made to answer on demand (429, 503, a partial write) is needed: there an
``httpx.MockTransport`` stands in for the server, the only third-party edge.
"""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from outpost.telemetry.influx_store import InfluxError, InfluxTelemetryStore
from outpost.telemetry.store import (
    HOUR_NS,
    MINUTE_NS,
    NS_PER_SECOND,
    Point,
    SeriesQuery,
    StoreOverloaded,
    StoreUnavailable,
)
from support.influx import running_influxd
from support.server import free_port

HOUR = 1_700_000_000 // 3600 * 3600 * NS_PER_SECOND

HOSTILE_ASSETS = (
    "a,b c=d",
    'it\'s "quoted"',
    "x' OR asset_id='victim",
    'y" OR "a"="a',
    "é/日本/😀",
    "trailing space ",
    "=starts=with=equals",
)
HOSTILE_METRICS = ("we,ird metric", 'quote"d', "it's", "ünïcode", "value")


def _database() -> str:
    return f"outpost_test_{uuid.uuid4().hex[:12]}"


def _show_databases(url: str) -> list[str]:
    answer = httpx.get(f"{url}/query", params={"q": "SHOW DATABASES"}).json()
    series = answer["results"][0].get("series", [{}])
    return [row[0] for row in series[0].get("values", [])]


def _drop(url: str, database: str) -> None:
    httpx.post(f"{url}/query", data={"q": f'DROP DATABASE "{database}"'})


@pytest.fixture
def store(influx_url: str) -> Iterator[InfluxTelemetryStore]:
    database = _database()
    influx = InfluxTelemetryStore(influx_url, database=database)
    yield influx
    influx.close()
    _drop(influx_url, database)


def _mock_store(handler: httpx.MockTransport) -> InfluxTelemetryStore:
    return InfluxTelemetryStore("http://influx.invalid:8086", database="outpost", transport=handler)


def _point(asset_id: str = "ast_1", metric: str = "cpu_load_pct", t: int = 0) -> Point:
    return Point("org_1", asset_id, metric, HOUR + t, 1.0)


# -- escaping -------------------------------------------------------------------------


def test_hostile_asset_ids_and_metric_names_round_trip(store: InfluxTelemetryStore) -> None:
    points = [
        Point("org 1,x=y", asset, metric, HOUR + i * NS_PER_SECOND, float(i * 10 + j))
        for i, asset in enumerate(HOSTILE_ASSETS)
        for j, metric in enumerate(HOSTILE_METRICS)
    ]
    store.write(points)

    raw = store.query(
        SeriesQuery("org 1,x=y", HOSTILE_ASSETS, HOSTILE_METRICS, HOUR, HOUR + HOUR_NS)
    )
    got = {(s.asset_id, s.metric): list(zip(s.times_ns, s.values, strict=True)) for s in raw}
    assert got == {(p.asset_id, p.metric): [(p.time_ns, p.value)] for p in points}
    assert [(s.metric, s.asset_id) for s in raw] == [
        (m, a) for m in HOSTILE_METRICS for a in HOSTILE_ASSETS
    ]

    latest = store.latest("org 1,x=y", HOSTILE_ASSETS, HOSTILE_METRICS)
    assert {(r.asset_id, r.metric, r.time_ns, r.value) for r in latest} == {
        (p.asset_id, p.metric, p.time_ns, p.value) for p in points
    }
    windows = store.query(
        SeriesQuery(
            "org 1,x=y",
            HOSTILE_ASSETS,
            HOSTILE_METRICS,
            HOUR,
            HOUR + HOUR_NS,
            every_ns=HOUR_NS,
            aggregate="sum",
        )
    )
    assert len(windows) == len(points)


def test_injection_through_an_asset_id_reads_nothing_else(store: InfluxTelemetryStore) -> None:
    store.write([Point("org_1", "victim", "m", HOUR, 42.0), Point("org_2", "x", "m", HOUR, 7.0)])

    for hostile in ("x' OR asset_id='victim", "x' OR '1'='1", 'victim" OR "1"="1', "x\\' OR 1=1"):
        assert store.query(SeriesQuery("org_1", (hostile,), ("m",), 0, HOUR + 1)) == []
        assert store.latest("org_1", [hostile]) == []
    assert store.latest("org_1' OR org_id='org_2", ["x"]) == []
    store.delete_range("org_2' OR org_id='org_1", None, 0, HOUR + 1)
    assert len(store.latest("org_1", ["victim"])) == 1


@pytest.mark.parametrize(
    "point",
    [
        _point(asset_id="back\\slash"),
        _point(asset_id="new\nline"),
        _point(asset_id=""),
        _point(metric="tab\tmetric"),
        _point(metric="outpost_meta"),
        Point("org_1", "ast_1", "m", HOUR, float("nan")),
    ],
)
def test_unportable_points_are_refused_before_anything_is_sent(
    store: InfluxTelemetryStore, point: Point
) -> None:
    with pytest.raises(ValueError):
        store.write([_point(t=1), point])
    assert store.latest("org_1", ["ast_1"]) == []


def test_floats_round_trip_exactly(store: InfluxTelemetryStore) -> None:
    values = [0.1 + 0.2, 1e-300, 1.7976931348623157e308, -123456.789012345678, 1e16, 5.0]
    store.write([_point(t=i) for i in range(len(values))])
    store.write([_point(t=i)._replace(value=v) for i, v in enumerate(values)])

    (series,) = store.query(SeriesQuery("org_1", ("ast_1",), ("cpu_load_pct",), 0, HOUR + 10))
    assert series.values == values
    assert all(type(v) is float for v in series.values)


# -- the database and the connection --------------------------------------------------


def test_database_is_created_on_first_use(influx_url: str) -> None:
    database = _database()
    store = InfluxTelemetryStore(influx_url, database=database)
    try:
        assert database not in _show_databases(influx_url)
        store.write([_point()])
        assert database in _show_databases(influx_url)
        assert len(store.latest("org_1", ["ast_1"])) == 1
    finally:
        store.close()
        _drop(influx_url, database)


def test_a_dropped_database_is_created_again(influx_url: str) -> None:
    database = _database()
    store = InfluxTelemetryStore(influx_url, database=database)
    try:
        store.write([_point()])
        _drop(influx_url, database)
        store.write([_point(t=1)])
        assert [r.time_ns for r in store.latest("org_1", ["ast_1"])] == [HOUR + 1]
    finally:
        store.close()
        _drop(influx_url, database)


def test_nothing_listening_is_unavailable() -> None:
    store = InfluxTelemetryStore(f"http://127.0.0.1:{free_port()}", database="outpost")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.write([_point()])
        assert raised.value.retry_after > 0
        with pytest.raises(StoreUnavailable):
            store.query(SeriesQuery("org_1", ("ast_1",), ("m",), 0, 1))
        with pytest.raises(StoreUnavailable):
            store.latest("org_1", ["ast_1"])
    finally:
        store.close()


def test_a_server_that_goes_down_is_unavailable_then_back() -> None:
    influxd = shutil.which("influxd")
    if influxd is None:
        pytest.skip("needs a local influxd to stop and start")
    with running_influxd(influxd) as url:
        store = InfluxTelemetryStore(url, database="outpost", timeout=5.0)
        store.write([_point()])
    try:
        with pytest.raises(StoreUnavailable):
            store.write([_point(t=1)])
    finally:
        store.close()


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_answers_are_overloaded(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(status, headers={"Retry-After": "7"}, json={"error": "slow down"})

    store = _mock_store(httpx.MockTransport(handler))
    with pytest.raises(StoreOverloaded, match="slow down") as raised:
        store.write([_point()])
    assert raised.value.retry_after == 7


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"error": "engine: cache maximum memory size exceeded"}),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(401, json={"error": "authorization failed"}),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_failures_are_unavailable(answer: httpx.Response | Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        if isinstance(answer, Exception):
            raise answer
        return answer

    store = _mock_store(httpx.MockTransport(handler))
    with pytest.raises(StoreUnavailable):
        store.write([_point()])


def test_a_partial_write_names_influxdbs_message() -> None:
    message = 'partial write: field type conflict: input field "value" is type integer'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(400, json={"error": message})

    store = _mock_store(httpx.MockTransport(handler))
    with pytest.raises(InfluxError, match="field type conflict"):
        store.write([_point()])


def test_credentials_are_sent_and_writes_are_line_protocol_in_ns() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/query":
            return httpx.Response(200, json={"results": [{"statement_id": 0}]})
        return httpx.Response(204)

    store = InfluxTelemetryStore(
        "http://influx.invalid:8086/",
        database="fleet db",
        username="outpost",
        password="s3cr:et",
        transport=httpx.MockTransport(handler),
    )
    store.write([Point("org_1", "a b,c", "cpu load", 123, 0.1)])

    expected = "Basic " + base64.b64encode(b"outpost:s3cr:et").decode()
    assert [r.headers.get("Authorization") for r in seen] == [expected, expected]
    create, write = seen
    assert create.method == "POST" and b"CREATE+DATABASE" in create.content
    assert write.method == "POST" and write.url.path == "/write"
    assert write.url.params["db"] == "fleet db"
    assert write.url.params["precision"] == "ns"
    first_line = write.content.decode().splitlines()[0]
    assert first_line == "cpu\\ load,asset_id=a\\ b\\,c,org_id=org_1 value=0.1 123"


def test_no_credentials_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    _mock_store(httpx.MockTransport(handler)).latest("org_1", ["a"])
    assert seen and all("Authorization" not in r.headers for r in seen)
    assert all(r.method == "GET" for r in seen if b"SELECT" in r.url.query)


# -- rollup bookkeeping shared by several processes ---------------------------------


def _hourly(store: InfluxTelemetryStore, resolution: str) -> list[tuple[str | None, list[float]]]:
    query = SeriesQuery(
        "org_1",
        ("a", "b"),
        ("m",),
        HOUR,
        HOUR + 3 * HOUR_NS,
        every_ns=HOUR_NS,
        aggregate="sum",
        resolution=resolution,  # type: ignore[arg-type]
    )
    return [(s.asset_id, s.values) for s in store.query(query)]


def test_a_late_point_written_by_another_process_is_rolled_up_again(
    influx_url: str, store: InfluxTelemetryStore
) -> None:
    other = InfluxTelemetryStore(influx_url, database=store.database)
    try:
        store.write(
            [
                Point("org_1", asset, "m", HOUR + i * MINUTE_NS, 1.0)
                for asset in ("a", "b")
                for i in range(150)
            ]
        )
        assert store.downsample(HOUR + 2 * HOUR_NS + 5 * MINUTE_NS) > 0
        assert other.rolled_up_until() == HOUR + 2 * HOUR_NS + 5 * MINUTE_NS
        assert _hourly(store, "1h") == _hourly(store, "raw")

        other.write([Point("org_1", "a", "m", HOUR + 30 * NS_PER_SECOND, 100.0)])
        assert _hourly(store, "1h") != _hourly(store, "raw")  # not redone yet
        store.downsample(HOUR + 2 * HOUR_NS + 6 * MINUTE_NS)
        assert _hourly(store, "1h") == _hourly(store, "raw")
        assert _hourly(other, "1m") == _hourly(store, "raw")
    finally:
        other.close()


def test_delete_range_redoes_the_rollups_it_cuts(store: InfluxTelemetryStore) -> None:
    store.write([Point("org_1", "a", "m", HOUR + i * 10 * NS_PER_SECOND, 1.0) for i in range(720)])
    store.downsample(HOUR + 3 * HOUR_NS)

    store.delete_range("org_1", ["a"], HOUR + 15 * MINUTE_NS + 5, HOUR + 90 * MINUTE_NS)

    assert _hourly(store, "1h") == _hourly(store, "raw")
    assert _hourly(store, "1m") == _hourly(store, "raw")


@pytest.mark.parametrize("aggregate", ["mean", "min", "max", "sum", "count", "first", "last"])
def test_rollups_hours_minutes_and_raw_combine_like_raw(
    store: InfluxTelemetryStore, aggregate: str
) -> None:
    store.write(
        [
            Point("org_1", asset, "m", HOUR + i * 7 * NS_PER_SECOND, float((i * 37) % 101))
            for asset in ("a", "b")
            for i in range(1500)
        ]
    )
    store.downsample(HOUR + 90 * MINUTE_NS + 30 * NS_PER_SECOND)  # 1h, then 1m, then raw
    base = SeriesQuery(
        "org_1",
        ("a", "b"),
        ("m",),
        HOUR + 5 * NS_PER_SECOND,
        HOUR + 3 * HOUR_NS,
        every_ns=HOUR_NS,
        aggregate=aggregate,  # type: ignore[arg-type]
    )
    raw = store.query(base)
    assert raw and store.query(replace(base, resolution="1h")) == raw
    assert store.query(replace(base, resolution="1m")) == raw
    assert store.query(replace(base, resolution="1h", across="sum")) == store.query(
        replace(base, across="sum")
    )
