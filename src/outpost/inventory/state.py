"""The proposed state that inventory rules check: plain frozen data, no database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True, slots=True)
class SiteState:
    id: str
    code: str
    grid_connection_kw: float | None = None


@dataclass(frozen=True, slots=True)
class AssetState:
    id: str
    site_id: str
    type: str
    parent_id: str | None
    name: str
    serial: str
    config: Mapping[str, Any]
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProposedState:
    """Every site in scope and every asset on those sites, as they would be after the write.

    ``changed`` names the assets created, updated or moved by the write; rules that
    only concern an asset's own data (its schema) look at those alone, while the
    relational rules check the whole scope, so that a change is refused whichever
    side of a relation it touches.
    """

    sites: Mapping[str, SiteState]
    assets: Mapping[str, AssetState]
    changed: frozenset[str] = field(default_factory=frozenset)

    @cached_property
    def children(self) -> Mapping[str | None, list[AssetState]]:
        index: dict[str | None, list[AssetState]] = defaultdict(list)
        for asset in self.assets.values():
            index[asset.parent_id].append(asset)
        return index

    def children_of(self, asset_id: str) -> list[AssetState]:
        return self.children.get(asset_id, [])

    def parent_of(self, asset: AssetState) -> AssetState | None:
        return self.assets.get(asset.parent_id) if asset.parent_id else None
