"""The SQL of the SQLite telemetry store: the schema, the statements that write, roll up
and read, and the bucket arithmetic they share (see the package docstring)."""

# SQL is assembled only from fixed fragments (table names, column expressions, integer
# constants); every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from typing import Final

from outpost.telemetry.store import HOUR_NS, MINUTE_NS, SeriesQuery

SCHEMA_VERSION: Final = 1
WATERMARK_KEY: Final = "rolled_up_until"

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        org_id TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        CONSTRAINT uq_series_key UNIQUE (org_id, asset_id, metric)
    )""",
    """CREATE TABLE IF NOT EXISTS points (
        series_id INTEGER NOT NULL,
        time_ns INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, time_ns)
    ) WITHOUT ROWID""",
    *(
        f"""CREATE TABLE IF NOT EXISTS {table} (
            series_id INTEGER NOT NULL,
            bucket_ns INTEGER NOT NULL,
            min REAL, max REAL, sum REAL, count INTEGER NOT NULL,
            first REAL, first_ns INTEGER NOT NULL,
            last REAL, last_ns INTEGER NOT NULL,
            PRIMARY KEY (series_id, bucket_ns)
        ) WITHOUT ROWID"""
        for table in ("rollup_1m", "rollup_1h")
    ),
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS dirty (
        series_id INTEGER NOT NULL,
        bucket_ns INTEGER NOT NULL,
        PRIMARY KEY (series_id, bucket_ns)
    ) WITHOUT ROWID""",
    f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{WATERMARK_KEY}', 0)",
)

#: Scratch tables of the writer's connection: the buckets to roll up again.
TEMP_SCHEMA: Final = tuple(
    f"""CREATE TEMP TABLE IF NOT EXISTS {table} (
        series_id INTEGER NOT NULL,
        bucket_ns INTEGER NOT NULL,
        PRIMARY KEY (series_id, bucket_ns)
    ) WITHOUT ROWID"""
    for table in ("touch_1m", "touch_1h")
)


def floor_sql(expr: str, size: int | str) -> str:
    """SQL flooring ``expr`` to a multiple of ``size`` (``%`` truncates in SQLite)."""
    return f"({expr} - ((({expr}) % {size}) + {size}) % {size})"


def floor(value: int, size: int) -> int:
    return value - value % size


def ceil(value: int, size: int) -> int:
    return -(-value // size) * size


INSERT_POINTS: Final = "INSERT OR REPLACE INTO points (series_id, time_ns, value) VALUES (?, ?, ?)"
MARK_DIRTY: Final = "INSERT OR IGNORE INTO dirty (series_id, bucket_ns) VALUES (?, ?)"
READ_WATERMARK: Final = f"SELECT value FROM meta WHERE key = '{WATERMARK_KEY}'"
SET_WATERMARK: Final = f"UPDATE meta SET value = ? WHERE key = '{WATERMARK_KEY}'"

#: First point time at or after ``?`` over every series: one primary-key seek per series.
NEXT_POINT: Final = """
    SELECT min((SELECT p.time_ns FROM points p
                WHERE p.series_id = s.id AND p.time_ns >= ?
                ORDER BY p.time_ns LIMIT 1))
    FROM series s"""

#: 1-minute rollups of every series for the points in [:lo, :hi) (minute-aligned).
ROLL_MINUTES: Final = f"""
    INSERT OR REPLACE INTO rollup_1m
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.value, g.fns, l.value, g.lns
    FROM (
        SELECT p.series_id AS sid, {floor_sql("p.time_ns", MINUTE_NS)} AS bucket,
               min(p.value) AS mn, max(p.value) AS mx, sum(p.value) AS sm, count(*) AS cnt,
               min(p.time_ns) AS fns, max(p.time_ns) AS lns
        FROM series s CROSS JOIN points p ON p.series_id = s.id
        WHERE p.time_ns >= :lo AND p.time_ns < :hi
        GROUP BY p.series_id, bucket
    ) g
    JOIN points f ON f.series_id = g.sid AND f.time_ns = g.fns
    JOIN points l ON l.series_id = g.sid AND l.time_ns = g.lns"""

#: The hours that minutes in [:lo, :hi) fall into, for every series, to roll up again.
TOUCH_HOURS_OF_RANGE: Final = f"""
    INSERT OR IGNORE INTO temp.touch_1h (series_id, bucket_ns)
    SELECT DISTINCT r.series_id, {floor_sql("r.bucket_ns", HOUR_NS)}
    FROM series s CROSS JOIN rollup_1m r ON r.series_id = s.id
    WHERE r.bucket_ns >= :lo AND r.bucket_ns < :hi"""

#: Roll the minutes listed in temp.touch_1m again from the raw points.
REROLL_MINUTES: Final = (
    """DELETE FROM rollup_1m
       WHERE (series_id, bucket_ns) IN (SELECT series_id, bucket_ns FROM temp.touch_1m)""",
    f"""INSERT INTO rollup_1m
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.value, g.fns, l.value, g.lns
    FROM (
        SELECT t.series_id AS sid, t.bucket_ns AS bucket,
               min(p.value) AS mn, max(p.value) AS mx, sum(p.value) AS sm, count(*) AS cnt,
               min(p.time_ns) AS fns, max(p.time_ns) AS lns
        FROM temp.touch_1m t CROSS JOIN points p
            ON p.series_id = t.series_id
            AND p.time_ns >= t.bucket_ns AND p.time_ns < t.bucket_ns + {MINUTE_NS}
        GROUP BY t.series_id, t.bucket_ns
    ) g
    JOIN points f ON f.series_id = g.sid AND f.time_ns = g.fns
    JOIN points l ON l.series_id = g.sid AND l.time_ns = g.lns""",
    f"""INSERT OR IGNORE INTO temp.touch_1h (series_id, bucket_ns)
    SELECT DISTINCT series_id, {floor_sql("bucket_ns", HOUR_NS)} FROM temp.touch_1m""",
    "DELETE FROM temp.touch_1m",
)

#: Roll the hours listed in temp.touch_1h again from the 1-minute rollups.
REROLL_HOURS: Final = (
    """DELETE FROM rollup_1h
       WHERE (series_id, bucket_ns) IN (SELECT series_id, bucket_ns FROM temp.touch_1h)""",
    f"""INSERT INTO rollup_1h
        (series_id, bucket_ns, min, max, sum, count, first, first_ns, last, last_ns)
    SELECT g.sid, g.bucket, g.mn, g.mx, g.sm, g.cnt, f.first, f.first_ns, l.last, l.last_ns
    FROM (
        SELECT t.series_id AS sid, t.bucket_ns AS bucket,
               min(r.min) AS mn, max(r.max) AS mx, sum(r.sum) AS sm, sum(r.count) AS cnt,
               min(r.bucket_ns) AS fb, max(r.bucket_ns) AS lb
        FROM temp.touch_1h t CROSS JOIN rollup_1m r
            ON r.series_id = t.series_id
            AND r.bucket_ns >= t.bucket_ns AND r.bucket_ns < t.bucket_ns + {HOUR_NS}
        GROUP BY t.series_id, t.bucket_ns
    ) g
    JOIN rollup_1m f ON f.series_id = g.sid AND f.bucket_ns = g.fb
    JOIN rollup_1m l ON l.series_id = g.sid AND l.bucket_ns = g.lb""",
    "DELETE FROM temp.touch_1h",
)

ORG_SERIES: Final = "SELECT id FROM series WHERE org_id = :org"
ORG_ASSETS_SERIES: Final = """
    SELECT s.id FROM json_each(:assets) a
    CROSS JOIN series s ON s.org_id = :org AND s.asset_id = a.value"""

#: Per aggregate: the partial columns of a raw point and of a rollup row (``c0``,
#: ``c1``), and how the partials of one window combine into its value. For first/last,
#: a lone min()/max() makes SQLite take the bare column ``g.c0`` from that row.
_PARTIALS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], str]]] = {
    "mean": (("x.value", "1"), ("x.sum", "x.count"), "sum(g.c0) / sum(g.c1) AS v"),
    "min": (("x.value",), ("x.min",), "min(g.c0) AS v"),
    "max": (("x.value",), ("x.max",), "max(g.c0) AS v"),
    "sum": (("x.value",), ("x.sum",), "sum(g.c0) AS v"),
    "count": (("1",), ("x.count",), "sum(g.c0) AS v"),
    "first": (("x.value", "x.time_ns"), ("x.first", "x.first_ns"), "g.c0 AS v, min(g.c1)"),
    "last": (("x.value", "x.time_ns"), ("x.last", "x.last_ns"), "g.c0 AS v, max(g.c1)"),
}
_ACROSS_SQL: Final = {"sum": "sum(v)", "mean": "avg(v)", "min": "min(v)", "max": "max(v)"}

#: The requested series with their rank in the answer: metric index, asset index.
_RANKS_CTE: Final = """
    WITH a(ai, asset) AS (SELECT key, value FROM json_each(:assets)),
    m(mi, metric) AS (SELECT key, value FROM json_each(:metrics)),
    ranks(sid, mi, ai) AS MATERIALIZED (
        SELECT s.id, m.mi, a.ai FROM a CROSS JOIN m
        CROSS JOIN series s ON s.org_id = :org AND s.asset_id = a.asset AND s.metric = m.metric
    )"""


def _segments(
    start_ns: int, end_ns: int, resolution: str, watermark: int
) -> list[tuple[str, int, int]]:
    """Split [start, end) into disjoint (table, lo, hi) parts: whole rollup buckets below
    the watermark from the coarsest table that fits, raw points for the rest."""
    tiers: tuple[tuple[str, int], ...] = {
        "1h": (("rollup_1h", HOUR_NS), ("rollup_1m", MINUTE_NS)),
        "1m": (("rollup_1m", MINUTE_NS),),
    }.get(resolution, ())

    def split(lo: int, hi: int, rest: tuple[tuple[str, int], ...]) -> list[tuple[str, int, int]]:
        if lo >= hi:
            return []
        if not rest:
            return [("points", lo, hi)]
        (table, size), finer = rest[0], rest[1:]
        a, b = ceil(lo, size), floor(hi, size)
        if a >= b:
            return split(lo, hi, finer)
        return [*split(lo, a, finer), (table, a, b), *split(b, hi, finer)]

    covered = min(end_ns, watermark)
    parts = [*split(start_ns, covered, tiers), *split(max(start_ns, covered), end_ns, ())]
    merged: list[tuple[str, int, int]] = []
    for part in parts:
        if merged and merged[-1][0] == part[0] == "points" and merged[-1][2] == part[1]:
            merged[-1] = ("points", merged[-1][1], part[2])
        else:
            merged.append(part)
    return merged


def query_sql(
    conn: sqlite3.Connection, query: SeriesQuery, params: dict[str, object]
) -> tuple[str, dict[str, object]]:
    """The SQL of ``query``, rows (metric index, asset index or NULL, time, value)."""
    if query.every_ns is None:
        params.update(lo=query.start_ns, hi=query.end_ns)
        sql = f"""{_RANKS_CTE}
            SELECT r.mi, r.ai, x.time_ns, x.value
            FROM ranks r CROSS JOIN points x ON x.series_id = r.sid
            WHERE x.time_ns >= :lo AND x.time_ns < :hi
            ORDER BY r.mi, r.ai, x.time_ns
            LIMIT :limit"""
        return sql, params

    (watermark,) = conn.execute(READ_WATERMARK).fetchone()
    raw_cols, rollup_cols, combine = _PARTIALS[query.aggregate]
    params["every"] = query.every_ns
    arms = []
    for n, (table, lo, hi) in enumerate(
        _segments(query.start_ns, query.end_ns, query.resolution, watermark)
    ):
        time_col, cols = (
            ("x.time_ns", raw_cols) if table == "points" else ("x.bucket_ns", rollup_cols)
        )
        partials = ", ".join(f"{col} AS c{i}" for i, col in enumerate(cols))
        params[f"lo{n}"], params[f"hi{n}"] = lo, hi
        arms.append(
            f"SELECT r.mi AS mi, r.ai AS ai, {floor_sql(time_col, ':every')} AS w, {partials} "
            f"FROM ranks r CROSS JOIN {table} x ON x.series_id = r.sid "
            f"WHERE {time_col} >= :lo{n} AND {time_col} < :hi{n}"
        )
    per_asset = (
        f"SELECT g.mi AS mi, g.ai AS ai, g.w AS w, {combine} "
        f"FROM ({' UNION ALL '.join(arms)}) g GROUP BY g.mi, g.ai, g.w"
    )
    if query.across is None:
        sql = f"{_RANKS_CTE} {per_asset} ORDER BY mi, ai, w LIMIT :limit"
    else:
        sql = (
            f"{_RANKS_CTE} SELECT mi, NULL, w, {_ACROSS_SQL[query.across]} "
            f"FROM ({per_asset}) GROUP BY mi, w ORDER BY mi, w LIMIT :limit"
        )
    return sql, params
