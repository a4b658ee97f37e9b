"""Rules about where an asset sits: its parent, cycles, and what a parent has room for."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from outpost.inventory.catalogue import get_type
from outpost.inventory.rules._helpers import (
    _count,
    _describe,
    _ids,
    _int,
    _others,
    _sentence,
    _site,
    _typed,
)
from outpost.inventory.state import AssetState, ProposedState
from outpost.validation import Violation


def check_parent(state: ProposedState) -> Iterator[Violation]:
    """Every asset has a parent exactly when its type needs one, of an allowed type, on its site."""
    for asset, asset_type in _typed(state):
        if asset.parent_id is None:
            if not asset_type.is_root:
                allowed = " or ".join(sorted(asset_type.parent_types))
                yield Violation(
                    "parent.required",
                    f"{_sentence(asset)} must be placed under a {allowed}",
                    "parent_id",
                    asset.id,
                )
            continue
        parent = state.assets.get(asset.parent_id)
        if asset_type.is_root:
            yield Violation(
                "parent.not_allowed",
                f"{_sentence(asset)} sits at the site root and cannot have a parent",
                "parent_id",
                asset.id,
                _ids([parent]) if parent else (),
            )
            continue
        if parent is None:
            yield Violation(
                "parent.missing",
                f"Parent {asset.parent_id} of {_describe(asset)} does not exist",
                "parent_id",
                asset.id,
            )
            continue
        if parent.site_id != asset.site_id:
            yield Violation(
                "parent.other_site",
                f"{_sentence(asset)} is on site {_site(state, asset.site_id)} but "
                f"its parent {_describe(parent)} is on site {_site(state, parent.site_id)}",
                "parent_id",
                asset.id,
                (parent.id,),
            )
        if parent.type not in asset_type.parent_types:
            allowed = " or ".join(sorted(asset_type.parent_types))
            yield Violation(
                "parent.not_allowed",
                f"{_sentence(asset)} cannot be placed under "
                f"{_describe(parent)}; it needs a {allowed}",
                "parent_id",
                asset.id,
                (parent.id,),
            )


def check_parent_cycle(state: ProposedState) -> Iterator[Violation]:
    """No asset is its own ancestor."""
    done: set[str] = set()
    for start in state.assets.values():
        position: dict[str, int] = {}
        path: list[AssetState] = []
        current: AssetState | None = start
        while current is not None and current.id not in done and current.id not in position:
            position[current.id] = len(path)
            path.append(current)
            current = state.parent_of(current)
        if current is not None and current.id in position:
            cycle = path[position[current.id] :]
            names = " -> ".join(a.name or a.id for a in [*cycle, cycle[0]])
            for asset in cycle:
                yield Violation(
                    "parent.cycle",
                    f"{_sentence(asset)} is its own ancestor: {names}",
                    "parent_id",
                    asset.id,
                    _ids(_others(cycle, asset)),
                )
        done.update(position)


def check_capacity(state: ProposedState) -> Iterator[Violation]:
    """A parent has no more children of each kind than its config allows (e.g. max_controllers)."""
    for parent, parent_type in _typed(state):
        if not parent_type.capacities:
            continue
        counted: dict[str, list[AssetState]] = defaultdict(list)
        for child in state.children_of(parent.id):
            child_type = get_type(child.type)
            counts_as = child_type.counts_as if child_type else None
            if counts_as is not None and counts_as in parent_type.capacities:
                counted[counts_as].append(child)
        for name, capacity in parent_type.capacities.items():
            limit = _int(parent, capacity.limit_key)
            children = counted.get(name, [])
            if limit is not None and len(children) > limit:
                yield Violation(
                    capacity.code,
                    f"{_sentence(parent)} has {_count(len(children), capacity.noun)}, "
                    f"more than its {capacity.limit_key} of {limit}",
                    f"config.{capacity.limit_key}",
                    parent.id,
                    _ids(children),
                )
