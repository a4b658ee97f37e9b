"""The hash chain: how one event's hash is computed from the previous one. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

GENESIS_HASH = "0" * 64

CHAINED_FIELDS = (
    "org_id",
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
)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


_PAYLOAD = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def hash_values(prev_hash: str, values: Sequence[Any]) -> str:
    """sha256 over the previous hash and the chained values (in ``CHAINED_FIELDS`` order)."""
    return hashlib.sha256(_PAYLOAD.encode([prev_hash, *values]).encode()).hexdigest()


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the event's fields, as one JSON array."""
    return hash_values(prev_hash, [fields[name] for name in CHAINED_FIELDS])
