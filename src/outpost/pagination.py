"""Keyset pagination with opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from outpost.errors import BadRequest
from outpost.validation import Violation

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_key: str) -> str:
    raw = json.dumps({"after": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key to continue after; a cursor that is not one of ours is a 400."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadRequest(
            "The cursor is not valid.",
            [Violation("cursor.invalid", "Use the next_cursor of a previous page.", "cursor")],
        ) from exc
    if not isinstance(value, str):
        raise BadRequest(
            "The cursor is not valid.",
            [Violation("cursor.invalid", "Use the next_cursor of a previous page.", "cursor")],
        )
    return value


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """``rows`` were fetched with ``limit + 1``; ``key`` gives a row's sort key."""
    if len(rows) > limit:
        kept = rows[:limit]
        return Page(kept, encode_cursor(key(kept[-1])))
    return Page(rows, None)
