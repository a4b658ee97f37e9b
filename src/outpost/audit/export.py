"""Audit export as JSON Lines or CSV, streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from outpost.audit.models import AuditEvent
from outpost.audit.queries import event_dict

CSV_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "source_ip",
    "user_agent",
    "reason",
    "hash",
)


def as_jsonl(events: Iterable[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event_dict(event), ensure_ascii=False, separators=(",", ":")) + "\n"


def as_csv(events: Iterable[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = event_dict(event)
        writer.writerow([_cell(row[name]) for name in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@"} else text  # no spreadsheet formulas


def render(events: Iterable[AuditEvent], fmt: str) -> Iterator[str]:
    return as_csv(events) if fmt == "csv" else as_jsonl(events)
