"""The envelope of every list response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Paged(BaseModel):
    """A page of a list: ``next_cursor`` is null on the last page."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def paged(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
