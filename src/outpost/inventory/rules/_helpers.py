"""Helpers shared by the inventory rules: reading config values, naming assets in messages."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from outpost.inventory.catalogue import AssetType, get_type
from outpost.inventory.state import AssetState, ProposedState
from outpost.validation import Violation

Rule = Callable[[ProposedState], Iterator[Violation]]

#: Cap on ``related`` ids for one-of-many conflicts (duplicate IPs, addresses, channels),
#: so that a pathological state does not turn one pass into a quadratic one.
RELATED_LIMIT: Final = 50
_NAMED_IN_MESSAGE: Final = 3


# --- Reading config values defensively ------------------------------------------------


def _config(asset: AssetState) -> Mapping[str, Any]:
    return asset.config if isinstance(asset.config, Mapping) else {}


def _int(asset: AssetState, key: str | None) -> int | None:
    value = _config(asset).get(key) if key else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _number(asset: AssetState, key: str | None) -> float | None:
    value = _config(asset).get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _str(asset: AssetState, key: str | None) -> str | None:
    value = _config(asset).get(key) if key else None
    return value if isinstance(value, str) else None


def _ip(asset: AssetState, key: str | None) -> ipaddress.IPv4Address | None:
    value = _str(asset, key)
    if value is None:
        return None
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def _host(cidr: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(cidr.partition("/")[0])


def _network(asset: AssetState, key: str | None) -> ipaddress.IPv4Network | None:
    """The subnet in CIDR notation (host bits ignored), or None unless it is one."""
    value = _str(asset, key)
    if value is None or "/" not in value:
        return None
    try:
        return ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return None


# --- Naming things in messages ---------------------------------------------------------


def _describe(asset: AssetState) -> str:
    asset_type = get_type(asset.type)
    label = asset_type.label.lower() if asset_type else asset.type
    return f"{label} {asset.name or asset.id}"


def _sentence(asset: AssetState) -> str:
    """``_describe`` capitalised, to start a sentence."""
    text = _describe(asset)
    return text[:1].upper() + text[1:]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _describe_all(assets: Sequence[AssetState], total: int) -> str:
    """Name the first few of ``total`` assets, of which ``assets`` is a prefix."""
    named = ", ".join(_describe(a) for a in assets[:_NAMED_IN_MESSAGE])
    rest = total - min(len(assets), _NAMED_IN_MESSAGE)
    return f"{named} and {rest} more" if rest > 0 else named


def _site(state: ProposedState, site_id: str) -> str:
    site = state.sites.get(site_id)
    return site.code if site else site_id


def _others(group: Sequence[AssetState], asset: AssetState) -> list[AssetState]:
    """The other members of a conflict group, at most RELATED_LIMIT of them (O(limit))."""
    return [a for a in group[: RELATED_LIMIT + 1] if a.id != asset.id][:RELATED_LIMIT]


def _ids(assets: Iterable[AssetState]) -> tuple[str, ...]:
    return tuple(a.id for a in assets)


def _typed(state: ProposedState) -> Iterator[tuple[AssetState, AssetType]]:
    """Every asset of a known type, with its type."""
    for asset in state.assets.values():
        asset_type = get_type(asset.type)
        if asset_type is not None:
            yield asset, asset_type


def _changed(state: ProposedState) -> Iterator[AssetState]:
    return (state.assets[i] for i in sorted(state.changed) if i in state.assets)


def _nearest(
    state: ProposedState, asset: AssetState, trait: Callable[[AssetType], str | None]
) -> AssetState | None:
    """The nearest ancestor whose type has the given trait set (cycle-safe)."""
    seen = {asset.id}
    current = state.parent_of(asset)
    while current is not None and current.id not in seen:
        current_type = get_type(current.type)
        if current_type is not None and trait(current_type):
            return current
        seen.add(current.id)
        current = state.parent_of(current)
    return None


def _reported_on(
    state: ProposedState,
    dependent: AssetState,
    dependent_path: str,
    owner: AssetState,
    owner_path: str,
) -> tuple[str, str, tuple[str, ...]]:
    """Where a conflict between an asset and the asset it depends on is reported.

    On the owner's field when the write changed only the owner (lowering a gateway's
    upload interval is refused beside that field), otherwise on the dependent's.
    Returns ``(object_id, path, related)``.
    """
    if owner.id in state.changed and dependent.id not in state.changed:
        return owner.id, owner_path, (dependent.id,)
    return dependent.id, dependent_path, (owner.id,)
