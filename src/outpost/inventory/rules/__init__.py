"""Inventory rules: pure checks over a proposed state, each yielding every violation it finds.

Rules about an asset's own data (its type, its config schema, its subnet) look at
``state.changed`` only. Relational rules look at every asset in scope, so a write
is refused whichever side of a relation it touches. Relational rules read the
traits of ``catalogue.AssetType`` and never branch on a type key; they skip config
values of the wrong type or missing, which the schema rule reports instead.
Each rule builds its indexes in one pass: O(n) in the number of assets.
"""

from __future__ import annotations

from typing import Final

from outpost.inventory.rules._helpers import RELATED_LIMIT, Rule
from outpost.inventory.rules.addressing import (
    check_channel,
    check_ip_subnet,
    check_ip_unique,
    check_modbus_address,
)
from outpost.inventory.rules.own_data import check_asset_type, check_config_schema, check_subnet
from outpost.inventory.rules.placement import check_capacity, check_parent, check_parent_cycle
from outpost.inventory.rules.site import (
    check_badge_zones,
    check_grid_capacity,
    check_sampling_interval,
)
from outpost.inventory.state import ProposedState
from outpost.validation import Violation

__all__ = [
    "RELATED_LIMIT",
    "RULES",
    "Rule",
    "check_all",
    "check_asset_type",
    "check_badge_zones",
    "check_capacity",
    "check_channel",
    "check_config_schema",
    "check_grid_capacity",
    "check_ip_subnet",
    "check_ip_unique",
    "check_modbus_address",
    "check_parent",
    "check_parent_cycle",
    "check_sampling_interval",
    "check_subnet",
]


RULES: Final[tuple[Rule, ...]] = (
    check_asset_type,
    check_config_schema,
    check_subnet,
    check_parent,
    check_parent_cycle,
    check_capacity,
    check_modbus_address,
    check_channel,
    check_ip_unique,
    check_ip_subnet,
    check_sampling_interval,
    check_grid_capacity,
    check_badge_zones,
)


def check_all(state: ProposedState) -> list[Violation]:
    """Every violation of every rule, in rule order."""
    return [violation for rule in RULES for violation in rule(state)]
