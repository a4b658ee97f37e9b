"""Rules about addresses: Modbus addresses and channels on a parent, IP addresses and subnets."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import TypeVar

from outpost.inventory.catalogue import get_type
from outpost.inventory.rules._helpers import (
    _describe,
    _describe_all,
    _ids,
    _int,
    _ip,
    _nearest,
    _network,
    _others,
    _reported_on,
    _site,
    _typed,
)
from outpost.inventory.state import AssetState, ProposedState
from outpost.validation import Violation

_K = TypeVar("_K")


def _duplicates(
    groups: Mapping[_K, list[AssetState]],
) -> Iterator[tuple[_K, AssetState, list[AssetState], int]]:
    """For each member of a group of two or more: (group key, member, the other members)."""
    for key, members in groups.items():
        if len(members) > 1:
            for asset in members:
                yield key, asset, _others(members, asset), len(members) - 1


def check_modbus_address(state: ProposedState) -> Iterator[Violation]:
    """Devices on one parent's Modbus bus have distinct addresses."""
    groups: dict[tuple[str, int], list[AssetState]] = defaultdict(list)
    paths: dict[str, str] = {}
    for asset, asset_type in _typed(state):
        address = _int(asset, asset_type.modbus_address_key)
        if asset.parent_id is not None and address is not None:
            groups[(asset.parent_id, address)].append(asset)
            paths[asset.id] = f"config.{asset_type.modbus_address_key}"
    for (parent_id, address), asset, others, total in _duplicates(groups):
        parent = state.assets.get(parent_id)
        bus = _describe(parent) if parent else parent_id
        yield Violation(
            "modbus.address_taken",
            f"Modbus address {address} is already used on {bus} by {_describe_all(others, total)}",
            paths[asset.id],
            asset.id,
            _ids(others),
        )


def check_channel(state: ProposedState) -> Iterator[Violation]:
    """A channel exists on the parent (below its channel count) and is used once."""
    groups: dict[tuple[str, int], list[AssetState]] = defaultdict(list)
    paths: dict[str, str] = {}
    for asset, asset_type in _typed(state):
        channel = _int(asset, asset_type.channel_key)
        parent = state.parent_of(asset)
        parent_type = get_type(parent.type) if parent else None
        if channel is None or parent is None or parent_type is None:
            continue
        if parent_type.channel_count_key is None:
            continue
        paths[asset.id] = f"config.{asset_type.channel_key}"
        groups[(parent.id, channel)].append(asset)
        count = _int(parent, parent_type.channel_count_key)
        if count is not None and channel >= count:
            offered = {0: "no channels", 1: "only channel 0"}.get(
                count, f"channels 0 to {count - 1}"
            )
            object_id, path, related = _reported_on(
                state,
                asset,
                paths[asset.id],
                parent,
                f"config.{parent_type.channel_count_key}",
            )
            yield Violation(
                "channel.out_of_range",
                f"Channel {channel} of {_describe(asset)} does not exist on {_describe(parent)}, "
                f"which has {offered}",
                path,
                object_id,
                related,
            )
    for (parent_id, channel), asset, others, total in _duplicates(groups):
        yield Violation(
            "channel.taken",
            f"Channel {channel} is already used on {_describe(state.assets[parent_id])} "
            f"by {_describe_all(others, total)}",
            paths[asset.id],
            asset.id,
            _ids(others),
        )


def check_ip_unique(state: ProposedState) -> Iterator[Violation]:
    """No two assets of one site share an IP address."""
    groups: dict[tuple[str, ipaddress.IPv4Address], list[AssetState]] = defaultdict(list)
    paths: dict[str, str] = {}
    for asset, asset_type in _typed(state):
        ip = _ip(asset, asset_type.ip_key)
        if ip is not None:
            groups[(asset.site_id, ip)].append(asset)
            paths[asset.id] = f"config.{asset_type.ip_key}"
    for (site_id, ip), asset, others, total in _duplicates(groups):
        yield Violation(
            "ip.duplicate",
            f"IP address {ip} is already used on site {_site(state, site_id)} "
            f"by {_describe_all(others, total)}",
            paths[asset.id],
            asset.id,
            _ids(others),
        )


def check_ip_subnet(state: ProposedState) -> Iterator[Violation]:
    """An asset's IP lies in its own subnet, or else in its nearest ancestor's subnet."""
    for asset, asset_type in _typed(state):
        ip = _ip(asset, asset_type.ip_key)
        if ip is None:
            continue
        owner = asset if asset_type.subnet_key else _nearest(state, asset, lambda t: t.subnet_key)
        owner_type = get_type(owner.type) if owner else None
        if owner is None or owner_type is None:
            continue
        network = _network(owner, owner_type.subnet_key)
        if network is None or ip in network:
            continue
        whose = "its subnet" if owner is asset else f"the subnet of {_describe(owner)}"
        yield Violation(
            "ip.outside_subnet",
            f"IP address {ip} of {_describe(asset)} is outside {whose} {network}",
            f"config.{asset_type.ip_key}",
            asset.id,
            () if owner is asset else (owner.id,),
        )
