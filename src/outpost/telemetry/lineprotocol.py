"""InfluxDB line protocol in, samples out: what ``POST /api/v1/write`` and MQTT parse.

    <measurement>[,<tag>=<value>...] <field>=<value>[,<field>=<value>...] [<timestamp>]

The asset is the tag ``asset=<asset id or serial>``; the measurement and the other tags
are ignored (Telegraf puts its plugin name in the measurement). Each field becomes one
:class:`Sample` whose metric is the field key. Values: floats (``12.5``, ``-1e3``),
integers ``12i``, unsigned ``12u``, booleans (``t T true True TRUE`` and the ``f``
forms) and double-quoted strings (``\\"`` and ``\\\\`` escapes). Escapes outside strings:
``\\,`` and ``\\ `` in the measurement, ``\\,`` ``\\=`` ``\\ `` in tag keys, tag values and
field keys, and ``\\\\`` for a backslash; a backslash before anything else is itself.

Like InfluxDB, a bad line does not spoil the body: each one is reported as a violation
(code ``telemetry.malformed_line``, path ``line N``, 1-based) and the good lines are
returned. Blank lines and ``#`` comments are skipped, ``\\r\\n`` is tolerated.

Lines without a backslash or a double quote (nearly all of them) take a fast path of
``str.split``; the others are read character by character.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

from outpost.errors import BadRequest
from outpost.telemetry.ingest import Sample
from outpost.validation import Violation

MALFORMED: Final = "telemetry.malformed_line"
ASSET_TAG: Final = "asset"
#: Nanoseconds per unit of each ``precision`` (InfluxDB v1 says n, u, ms, s, m, h; v2 ns, us).
PRECISIONS: Final[dict[str, int]] = {
    "n": 1,
    "ns": 1,
    "u": 1_000,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
#: InfluxDB's own time range (a few nanoseconds inside int64).
MIN_TIME_NS: Final = -9_223_372_036_854_775_806
MAX_TIME_NS: Final = 9_223_372_036_854_775_806
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_UINT_MAX: Final = 2**64 - 1
_BOOLEANS: Final[dict[str, bool]] = {
    **dict.fromkeys(("t", "T", "true", "True", "TRUE"), True),
    **dict.fromkeys(("f", "F", "false", "False", "FALSE"), False),
}
_INTEGER: Final[Callable[[str], re.Match[str] | None]] = re.compile(r"[+-]?[0-9]+").fullmatch
_TIMESTAMP: Final[Callable[[str], re.Match[str] | None]] = re.compile(r"-?[0-9]+").fullmatch

_FLOAT_CHARS: Final = "0123456789.eE+-"
_NAME_ESCAPES: Final = frozenset(", \\")
_KEY_ESCAPES: Final = frozenset(",= \\")


class _Malformed(Exception):
    """One line is wrong; the message says why (no secrets: it quotes the client's text)."""


def nanoseconds_per_unit(precision: str) -> int:
    """The multiplier of ``precision``; BadRequest naming the accepted ones otherwise."""
    try:
        return PRECISIONS[precision]
    except KeyError:
        accepted = ", ".join(PRECISIONS)
        raise BadRequest(
            f"precision must be one of {accepted}.",
            [Violation("telemetry.bad_precision", f"Not a precision: {precision!r}.", "precision")],
        ) from None


def parse_line_protocol(body: bytes, precision: str = "ns") -> tuple[list[Sample], list[Violation]]:
    """The samples of every good line and one violation per bad line of ``body``."""
    multiplier = nanoseconds_per_unit(precision)
    samples: list[Sample] = []
    violations: list[Violation] = []
    try:
        lines: list[str | None] = list(body.decode("utf-8").split("\n"))
    except UnicodeDecodeError:
        lines = [_decoded(raw) for raw in body.split(b"\n")]
    append_sample = samples.append
    for index, line in enumerate(lines):
        where = f"line {index + 1}"
        try:
            if line is None:
                raise _Malformed("the line is not valid UTF-8")
            line = line.strip(" \t\r")
            if not line or line[0] == "#":
                continue
            if "\\" in line or '"' in line:
                asset, fields, timestamp = _parse_slow(line)
            else:
                asset, fields, timestamp = _parse_fast(line)
            time_ns = _time(timestamp, multiplier) if timestamp is not None else None
        except _Malformed as exc:
            violations.append(Violation(MALFORMED, f"Malformed line: {exc}.", where))
            continue
        for metric, value in fields:
            append_sample(Sample(asset, metric, value, time_ns, where))
    return samples, violations


def _decoded(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _time(timestamp: str, multiplier: int) -> int:
    if not _TIMESTAMP(timestamp):
        raise _Malformed(f"the timestamp {timestamp!r} is not an integer")
    time_ns = int(timestamp) * multiplier
    if not MIN_TIME_NS <= time_ns <= MAX_TIME_NS:
        raise _Malformed(f"the timestamp {timestamp} is out of range")
    return time_ns


Fields = list[tuple[str, object]]


def _parse_fast(line: str) -> tuple[str, Fields, str | None]:
    """A line with no backslash and no double quote: spaces and commas are separators."""
    parts = line.split(" ")
    if len(parts) > 3 or "" in parts:
        parts = [part for part in parts if part]  # runs of spaces between the sections
        if len(parts) > 3:
            raise _Malformed("unexpected text after the timestamp")
    if len(parts) < 2:
        raise _Malformed("missing field set")
    head, field_set = parts[0], parts[1]
    tags = head.split(",")
    if not tags[0]:
        raise _Malformed("missing measurement")
    asset: str | None = None
    for tag in tags[1:]:
        key, equals, value = tag.partition("=")
        if not equals or not key or not value or "=" in value:
            raise _Malformed(f"invalid tag {tag!r}: expected key=value")
        if key == ASSET_TAG:
            if asset is not None:
                raise _Malformed("the asset tag appears twice")
            asset = value
    if asset is None:
        raise _Malformed("missing asset tag (asset=<asset id or serial>)")
    fields: Fields = []
    for field in field_set.split(","):
        key, equals, text = field.partition("=")
        if not equals or not key:
            raise _Malformed(f"invalid field {field!r}: expected key=value")
        fields.append((key, _value(key, text)))
    return asset, fields, parts[2] if len(parts) == 3 else None


def _value(key: str, text: str) -> object:
    """An unquoted field value: number or boolean."""
    try:
        number_f = float(text)
    except ValueError:
        pass
    else:
        # float() also takes "nan", "inf", "1_000", " 1" and non-ASCII digits: Influx doesn't.
        # Made of these characters only, what float() takes is a plain decimal literal.
        if not text.strip(_FLOAT_CHARS):
            if math.isfinite(number_f):
                return number_f
            raise _Malformed(f"field {key!r}: float {text} is out of range")
        raise _Malformed(f"field {key!r}: invalid value {text!r}")
    last = text[-1:]
    if last == "i":
        if _INTEGER(text[:-1]):
            number = int(text[:-1])
            if _INT_MIN <= number <= _INT_MAX:
                return number
            raise _Malformed(f"field {key!r}: integer {text} is out of range")
    elif last == "u":
        if text[:-1].isascii() and text[:-1].isdigit():
            number = int(text[:-1])
            if number <= _UINT_MAX:
                return number
            raise _Malformed(f"field {key!r}: unsigned integer {text} is out of range")
    else:
        boolean = _BOOLEANS.get(text)
        if boolean is not None:
            return boolean
    if not text:
        raise _Malformed(f"field {key!r} has no value")
    raise _Malformed(f"field {key!r}: invalid value {text!r}")


def _scan(line: str, pos: int, stops: str, escapes: frozenset[str]) -> tuple[str, int]:
    """Read from ``pos`` up to the first unescaped character of ``stops`` (or the end):
    the unescaped text and the position of the stop."""
    out: list[str] = []
    end = len(line)
    start = pos
    while pos < end:
        char = line[pos]
        if char == "\\" and pos + 1 < end and line[pos + 1] in escapes:
            out.append(line[start:pos])
            out.append(line[pos + 1])
            pos += 2
            start = pos
        elif char in stops:
            break
        else:
            pos += 1
    out.append(line[start:pos])
    return "".join(out), pos


def _parse_slow(line: str) -> tuple[str, Fields, str | None]:
    """Any line: escapes in names and keys, quoted string values."""
    end = len(line)
    measurement, pos = _scan(line, 0, ", ", _NAME_ESCAPES)
    if not measurement:
        raise _Malformed("missing measurement")
    asset: str | None = None
    while pos < end and line[pos] == ",":
        key, pos = _scan(line, pos + 1, ",= ", _KEY_ESCAPES)
        if pos >= end or line[pos] != "=" or not key:
            raise _Malformed(f"invalid tag {key!r}: expected key=value")
        value, pos = _scan(line, pos + 1, ",= ", _KEY_ESCAPES)
        if not value or (pos < end and line[pos] == "="):
            raise _Malformed(f"invalid value for tag {key!r}")
        if key == ASSET_TAG:
            if asset is not None:
                raise _Malformed("the asset tag appears twice")
            asset = value
    pos = _skip_spaces(line, pos)
    if pos >= end:
        raise _Malformed("missing field set")
    if asset is None:
        raise _Malformed("missing asset tag (asset=<asset id or serial>)")
    fields: Fields = []
    while True:
        key, pos = _scan(line, pos, ",= ", _KEY_ESCAPES)
        if pos >= end or line[pos] != "=" or not key:
            raise _Malformed(f"invalid field {key!r}: expected key=value")
        pos += 1
        if pos < end and line[pos] == '"':
            text, pos = _string(line, pos + 1, key)
            fields.append((key, text))
        else:
            stop = pos
            while stop < end and line[stop] not in ", ":
                stop += 1
            fields.append((key, _value(key, line[pos:stop])))
            pos = stop
        if pos < end and line[pos] == ",":
            pos += 1
            continue
        break
    pos = _skip_spaces(line, pos)
    if pos >= end:
        return asset, fields, None
    timestamp = line[pos:]
    if " " in timestamp:
        raise _Malformed("unexpected text after the timestamp")
    return asset, fields, timestamp


def _string(line: str, pos: int, key: str) -> tuple[str, int]:
    """A string value from just after its opening quote: the text and the position after
    the closing quote."""
    out: list[str] = []
    end = len(line)
    start = pos
    while pos < end:
        char = line[pos]
        if char == "\\" and pos + 1 < end and line[pos + 1] in '"\\':
            out.append(line[start:pos])
            out.append(line[pos + 1])
            pos += 2
            start = pos
        elif char == '"':
            out.append(line[start:pos])
            after = pos + 1
            if after < end and line[after] not in ", ":
                raise _Malformed(f"field {key!r}: unexpected text after the closing quote")
            return "".join(out), after
        else:
            pos += 1
    raise _Malformed(f"field {key!r}: unterminated string")


def _skip_spaces(line: str, pos: int) -> int:
    end = len(line)
    while pos < end and line[pos] == " ":
        pos += 1
    return pos
