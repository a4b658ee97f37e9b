"""The text the InfluxDB store sends: the measurements it reserves, line protocol lines
and write bodies, and escaped InfluxQL fragments (see the package docstring)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from outpost.telemetry.store import HOUR_NS, Point, Resolution

RESERVED_PREFIX: Final = "outpost_"
META: Final = "outpost_meta"
ROLLUPS: Final[dict[Resolution, str]] = {"1m": "outpost_rollup_1m", "1h": "outpost_rollup_1h"}
#: A write body above this is sent in several requests (InfluxDB 1.x refuses 25 MB).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: InfluxDB 1.x refuses string fields above 64 KiB.
MAX_MARKER_BYTES: Final = 32 * 1024


# -- line protocol -------------------------------------------------------------------


def _check_name(kind: str, value: str) -> None:
    """Refuse what line protocol cannot carry the same way on InfluxDB 1.x, 2.x and 3.x."""
    if not value:
        raise ValueError(f"{kind} must not be empty")
    if "\\" in value or any(ord(char) < 32 or char == "\x7f" for char in value):
        raise ValueError(
            f"{kind} {value!r} cannot be stored in InfluxDB: backslashes and control "
            "characters are not portable in line protocol"
        )


def _measurement(name: str) -> str:
    return name.replace(",", "\\,").replace(" ", "\\ ")


def tag_value(value: str) -> str:
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def float_field(value: float) -> str:
    """A line protocol float that reads back as exactly ``value``."""
    return repr(float(value))


def _line_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=65_536)
def _series_key(metric: str, asset_id: str, org_id: str) -> str:
    """The escaped ``measurement,tags`` of a raw point (the same few thousand repeat)."""
    _check_name("metric name", metric)
    if metric.startswith(RESERVED_PREFIX):
        raise ValueError(f"metric names starting with {RESERVED_PREFIX!r} are reserved")
    _check_name("org id", org_id)
    _check_name("asset id", asset_id)
    return f"{_measurement(metric)},asset_id={tag_value(asset_id)},org_id={tag_value(org_id)}"


def point_line(point: Point) -> str:
    value = float(point.value)
    if not math.isfinite(value):
        raise ValueError(f"{point.metric} of {point.asset_id}: {value} is not a finite number")
    key = _series_key(point.metric, point.asset_id, point.org_id)
    return f"{key} value={value!r} {int(point.time_ns)}"


def dirty_lines(buckets: Iterable[tuple[str, str, int]]) -> list[str]:
    """Lines naming ``buckets`` as (org, metric, hour start), stamped by InfluxDB."""
    lines: list[str] = []
    part: list[tuple[str, str, int]] = []
    size = 0
    for bucket in sorted(buckets):
        part.append(bucket)
        size += len(bucket[0]) + len(bucket[1]) + 30
        if size > MAX_MARKER_BYTES:
            lines.append(_dirty_line(len(lines), part))
            part, size = [], 0
    if part:
        lines.append(_dirty_line(len(lines), part))
    return lines


def _dirty_line(index: int, buckets: list[tuple[str, str, int]]) -> str:
    return f"{META},kind=dirty,part={index} buckets={_line_string(json.dumps(buckets))}"


# -- InfluxQL -------------------------------------------------------------------------


def ident(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def any_of(tag: str, values: Iterable[str]) -> str:
    return "(" + " OR ".join(f"{ident(tag)} = {literal(value)}" for value in values) + ")"


def sources(names: Iterable[str]) -> str:
    return ", ".join(ident(name) for name in names)


def between(start_ns: int, end_ns: int) -> str:
    return f"time >= {start_ns} AND time < {end_ns}"


def floor(time_ns: int, step: int) -> int:
    return time_ns // step * step


def ceil(time_ns: int, step: int) -> int:
    return -(-time_ns // step) * step


# -- write bodies ---------------------------------------------------------------------


def point_bodies(lines: list[str], points: Sequence[Point]) -> Iterator[bytes]:
    """Write bodies of ``lines`` (one per point of ``points``), each carrying the dirty
    lines of its own points."""
    chunk: list[str] = []
    buckets: set[tuple[str, str, int]] = set()
    size = 0
    for line, point in zip(lines, points, strict=True):
        chunk.append(line)
        buckets.add((point.org_id, point.metric, floor(point.time_ns, HOUR_NS)))
        size += len(line) + 1
        if size >= MAX_BODY_BYTES // 2:
            yield "\n".join([*chunk, *dirty_lines(buckets)]).encode()
            chunk, buckets, size = [], set(), 0
    if chunk:
        yield "\n".join([*chunk, *dirty_lines(buckets)]).encode()


def bodies(lines: list[str]) -> Iterator[bytes]:
    """Write bodies of ``lines``, split below ``MAX_BODY_BYTES``."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line) + 1
        if size >= MAX_BODY_BYTES // 2:
            yield "\n".join(chunk).encode()
            chunk, size = [], 0
    if chunk:
        yield "\n".join(chunk).encode()
