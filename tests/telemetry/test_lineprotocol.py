"""InfluxDB line protocol: formatting then parsing round-trips, every error kind."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost.errors import BadRequest
from outpost.telemetry.ingest import Sample
from outpost.telemetry.lineprotocol import (
    MALFORMED,
    MAX_TIME_NS,
    PRECISIONS,
    parse_line_protocol,
)

# -- a formatter, written from the spec, for the round trip --------------------------------


def _escape(text: str, special: str) -> str:
    out = text.replace("\\", "\\\\")
    for char in special:
        out = out.replace(char, "\\" + char)
    return out


@dataclass(frozen=True)
class Field:
    value: object
    text: str  # as written on the wire


@dataclass(frozen=True)
class Line:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, Field], ...]
    timestamp: int | None

    def format(self) -> str:
        head = _escape(self.measurement, ", ")
        for key, value in self.tags:
            head += f",{_escape(key, ',= ')}={_escape(value, ',= ')}"
        fields = ",".join(f"{_escape(key, ',= ')}={field.text}" for key, field in self.fields)
        tail = "" if self.timestamp is None else f" {self.timestamp}"
        return f"{head} {fields}{tail}"


_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r\t"),
    min_size=1,
    max_size=12,
)
_plain = st.text("abcxyz_019.-", min_size=1, max_size=8)  # the fast path's diet
_name = st.one_of(_text, _plain)


def _string_field(text: str) -> Field:
    return Field(text, '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')


_fields = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: Field(x, repr(x))),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: Field(n, f"{n}i")),
    st.integers(0, 2**64 - 1).map(lambda n: Field(n, f"{n}u")),
    st.sampled_from(["t", "T", "true", "True", "TRUE"]).map(lambda t: Field(True, t)),
    st.sampled_from(["f", "F", "false", "False", "FALSE"]).map(lambda t: Field(False, t)),
    st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=12).map(
        _string_field
    ),
)


@st.composite
def lines(draw: st.DrawFn, precision: str = "ns") -> tuple[Line, str]:
    asset = draw(_name)
    others = draw(st.lists(st.tuples(_name, _name), max_size=3))
    tags = [(key, value) for key, value in others if key != "asset"]
    tags.insert(draw(st.integers(0, len(tags))), ("asset", asset))
    fields = draw(st.lists(st.tuples(_name, _fields), min_size=1, max_size=4))
    limit = MAX_TIME_NS // PRECISIONS[precision]
    timestamp = draw(st.none() | st.integers(-limit, limit))
    measurement = draw(_name.filter(lambda m: not m.startswith("#")))
    return Line(measurement, tuple(tags), tuple(fields), timestamp), asset


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@settings(max_examples=300)
@given(st.lists(lines(), min_size=1, max_size=5))
def test_formatting_then_parsing_round_trips(drawn: list[tuple[Line, str]]) -> None:
    body = "\n".join(line.format() for line, _asset in drawn).encode()

    samples, violations = parse_line_protocol(body, "ns")

    assert violations == []
    expected = [
        (asset, key, field.value, line.timestamp, f"line {number}")
        for number, (line, asset) in enumerate(drawn, start=1)
        for key, field in line.fields
    ]
    got = [(s.asset, s.metric, s.value, s.time_ns, s.where) for s in samples]
    assert len(got) == len(expected)
    for have, want in zip(got, expected, strict=True):
        assert have[:2] == want[:2] and have[3:] == want[3:]
        assert _same(have[2], want[2]), (have, want)


@given(st.sampled_from(sorted(PRECISIONS)), st.data())
def test_timestamps_are_scaled_by_the_precision(precision: str, data: st.DataObject) -> None:
    line, _asset = data.draw(lines(precision))
    samples, violations = parse_line_protocol(line.format().encode(), precision)
    assert violations == []
    expected = None if line.timestamp is None else line.timestamp * PRECISIONS[precision]
    assert {sample.time_ns for sample in samples} == {expected}


# -- what is accepted ----------------------------------------------------------------------


def _one(line: str, precision: str = "ns") -> Sample:
    samples, violations = parse_line_protocol(line.encode(), precision)
    assert violations == []
    assert len(samples) == 1
    return samples[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.5", 12.5),
        ("12", 12.0),
        ("-1.5e3", -1500.0),
        ("1E-2", 0.01),
        ("+3.", 3.0),
        (".5", 0.5),
        ("12i", 12),
        ("-12i", -12),
        ("12u", 12),
        ("18446744073709551615u", 2**64 - 1),
        *((spelling, True) for spelling in ("t", "T", "true", "True", "TRUE")),
        *((spelling, False) for spelling in ("f", "F", "false", "False", "FALSE")),
        ('"a b,c=d"', "a b,c=d"),
        ('"say \\"hi\\" \\\\o/"', 'say "hi" \\o/'),
        ('""', ""),
    ],
)
def test_field_values(text: str, value: object) -> None:
    sample = _one(f"m,asset=a f={text}")
    assert type(sample.value) is type(value)
    assert sample.value == value


def test_escapes_in_names_keys_and_tags() -> None:
    sample = _one("my\\ meas\\,ure,site=a\\ b,asset=ast\\,1\\=x f\\ k\\=\\,=1 5")
    assert (sample.asset, sample.metric, sample.time_ns) == ("ast,1=x", "f k=,", 5)


def test_a_backslash_before_anything_else_is_itself() -> None:
    assert _one("m,asset=a\\b f=1").asset == "a\\b"


def test_comments_blank_lines_crlf_and_extra_spaces_are_tolerated() -> None:
    body = b"# a comment\r\n\r\n  m,asset=a f=1  2\r\nm,asset=b   g=2i   3\n\n"
    samples, violations = parse_line_protocol(body, "ns")
    assert violations == []
    assert [(s.asset, s.metric, s.value, s.time_ns, s.where) for s in samples] == [
        ("a", "f", 1.0, 2, "line 3"),
        ("b", "g", 2, 3, "line 4"),
    ]


def test_the_measurement_and_other_tags_are_ignored_and_each_field_is_a_sample() -> None:
    samples, _ = parse_line_protocol(
        b"inverter,asset=ast_1,site=x ac_power_kw=12.5,dc_voltage_v=612.3 1732300000000000000",
        "ns",
    )
    assert samples == [
        Sample("ast_1", "ac_power_kw", 12.5, 1732300000000000000, "line 1"),
        Sample("ast_1", "dc_voltage_v", 612.3, 1732300000000000000, "line 1"),
    ]


def test_no_timestamp_means_the_receive_time() -> None:
    assert _one("m,asset=a f=1").time_ns is None


@pytest.mark.parametrize(("precision", "factor"), sorted(PRECISIONS.items()))
def test_every_precision(precision: str, factor: int) -> None:
    assert _one("m,asset=a f=1 7", precision).time_ns == 7 * factor


def test_an_unknown_precision_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as raised:
        parse_line_protocol(b"m,asset=a f=1", "d")
    assert raised.value.violations[0].code == "telemetry.bad_precision"


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (",asset=a f=1", "missing measurement"),
        (",asset=\\ a f=1", "missing measurement"),
        ("m,asset=a", "missing field set"),
        ("m,asset=a\\ b", "missing field set"),
        ("m f=1", "missing asset tag"),
        ("m,site=x f=1", "missing asset tag"),
        ("m,site=\\ x f=1", "missing asset tag"),
        ("m,asset=a,asset=b f=1", "asset tag appears twice"),
        ("m,asset=a,asset=\\ b f=1", "asset tag appears twice"),
        ("m,asset f=1", "invalid tag"),
        ("m,=x,asset=a f=1", "invalid tag"),
        ("m,asset= f=1", "invalid tag"),
        ("m,asset=a=b f=1", "invalid tag"),
        ("m,asset=\\ a,site f=1", "invalid tag"),
        ("m,asset=\\ a,site= f=1", "invalid value for tag"),
        ("m,asset=a f", "invalid field"),
        ("m,asset=a =1", "invalid field"),
        ("m,asset=a f=1,", "invalid field"),
        ('m,asset=a f="x",', "invalid field"),
        ("m,asset=a f=", "has no value"),
        ('m,asset=a g="x",f=', "has no value"),
        ("m,asset=a f=abc", "invalid value"),
        ('m,asset=a g="x",f=abc', "invalid value"),
        ("m,asset=a f=nan", "invalid value"),
        ("m,asset=a f=inf", "invalid value"),
        ("m,asset=a f=-Infinity", "invalid value"),
        ("m,asset=a f=1_000", "invalid value"),
        ("m,asset=a f=1.2.3", "invalid value"),
        ("m,asset=a f=0x10", "invalid value"),
        ("m,asset=a f=\u0661\u0662", "invalid value"),  # Arabic-Indic digits
        ("m,asset=a f=12i3", "invalid value"),
        ("m,asset=a f=1.5i", "invalid value"),
        ("m,asset=a f=-1u", "invalid value"),
        ("m,asset=a f=yes", "invalid value"),
        ("m,asset=a f=1e999", "float 1e999 is out of range"),
        ("m,asset=a f=9223372036854775808i", "integer 9223372036854775808i is out of range"),
        ("m,asset=a f=18446744073709551616u", "out of range"),
        ('m,asset=a f="abc', "unterminated string"),
        ('m,asset=a f="abc\\"', "unterminated string"),
        ('m,asset=a f="abc"x', "unexpected text after the closing quote"),
        ("m,asset=a f=1 12a", "is not an integer"),
        ("m,asset=a f=1 1.5", "is not an integer"),
        ('m,asset=a f="x" 1.5', "is not an integer"),
        ("m,asset=a f=1 9223372036854775807", "out of range"),
        ("m,asset=a f=1 1 2", "unexpected text after the timestamp"),
        ('m,asset=a f="x" 1 2', "unexpected text after the timestamp"),
    ],
)
def test_malformed_lines(line: str, reason: str) -> None:
    samples, violations = parse_line_protocol(line.encode(), "ns")
    assert samples == []
    assert len(violations) == 1
    violation = violations[0]
    assert (violation.code, violation.path) == (MALFORMED, "line 1")
    assert reason in violation.message


def test_a_timestamp_out_of_range_only_after_scaling() -> None:
    samples, violations = parse_line_protocol(b"m,asset=a f=1 9300000000", "s")
    assert samples == []
    assert "out of range" in violations[0].message


def test_invalid_utf8_spoils_only_its_line() -> None:
    body = b"m,asset=a f=1\nm,asset=\xff f=2\nm,asset=c f=3"
    samples, violations = parse_line_protocol(body, "ns")
    assert [s.asset for s in samples] == ["a", "c"]
    assert [(v.path, v.message) for v in violations] == [
        ("line 2", "Malformed line: the line is not valid UTF-8.")
    ]


def test_bad_lines_are_reported_and_good_ones_kept() -> None:
    body = b"m,asset=a f=1\nm f=2\nm,asset=c f=3,g=x\nm,asset=d f=4"
    samples, violations = parse_line_protocol(body, "ns")
    assert [(s.asset, s.where) for s in samples] == [("a", "line 1"), ("d", "line 4")]
    assert [v.path for v in violations] == ["line 2", "line 3"]
