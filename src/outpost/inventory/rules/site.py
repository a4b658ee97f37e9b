"""Rules about timing, power and access across a site."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from outpost.inventory.catalogue import CATALOGUE, get_type
from outpost.inventory.rules._helpers import (
    _config,
    _describe,
    _ids,
    _int,
    _nearest,
    _number,
    _reported_on,
    _sentence,
    _site,
    _str,
    _typed,
)
from outpost.inventory.state import AssetState, ProposedState
from outpost.validation import Violation


def check_sampling_interval(state: ProposedState) -> Iterator[Violation]:
    """A sampling interval does not exceed the upload interval of the nearest uploading ancestor."""
    for asset, asset_type in _typed(state):
        sampling = _int(asset, asset_type.sampling_key)
        if sampling is None:
            continue
        uploader = _nearest(state, asset, lambda t: t.upload_interval_key)
        uploader_type = get_type(uploader.type) if uploader else None
        if uploader is None or uploader_type is None:
            continue
        upload = _int(uploader, uploader_type.upload_interval_key)
        if upload is not None and sampling > upload:
            object_id, path, related = _reported_on(
                state,
                asset,
                f"config.{asset_type.sampling_key}",
                uploader,
                f"config.{uploader_type.upload_interval_key}",
            )
            yield Violation(
                "sensor.sampling_exceeds_upload",
                f"{_sentence(asset)} samples every {sampling} s, longer than the "
                f"{upload} s upload interval of {_describe(uploader)}",
                path,
                object_id,
                related,
            )


def check_grid_capacity(state: ProposedState) -> Iterator[Violation]:
    """The rated power installed on a site does not exceed its grid connection."""
    installed: dict[str, list[tuple[AssetState, float]]] = defaultdict(list)
    for asset, asset_type in _typed(state):
        power = _number(asset, asset_type.power_kw_key)
        if power is not None:
            installed[asset.site_id].append((asset, power))
    for site_id, site in sorted(state.sites.items()):
        limit = site.grid_connection_kw
        sources = installed.get(site_id, [])
        total = math.fsum(power for _, power in sources)
        if limit is not None and total > limit:
            yield Violation(
                "site.grid_capacity_exceeded",
                f"Installed rated power {total:g} kW on site {site.code} exceeds its "
                f"{limit:g} kW grid connection",
                "grid_connection_kw",
                site_id,
                _ids(a for a, _ in sources),
            )


def check_badge_zones(state: ProposedState) -> Iterator[Violation]:
    """Every zone a badge needs is provided by some asset (a badge reader) on its site."""
    providers = " or ".join(
        t.label.lower() for t in CATALOGUE.values() if t.provides_zone_key is not None
    )
    provided: dict[str, set[str]] = defaultdict(set)
    for asset, asset_type in _typed(state):
        zone = _str(asset, asset_type.provides_zone_key)
        if zone is not None:
            provided[asset.site_id].add(zone)
    for asset, asset_type in _typed(state):
        key = asset_type.requires_zones_key
        zones = _config(asset).get(key) if key else None
        if not isinstance(zones, list):
            continue
        for index, zone in enumerate(zones):
            if isinstance(zone, str) and zone not in provided[asset.site_id]:
                yield Violation(
                    "badge.zone_unknown",
                    f"Zone {zone!r} of {_describe(asset)} is not provided by any "
                    f"{providers} on site {_site(state, asset.site_id)}",
                    f"config.{key}[{index}]",
                    asset.id,
                )
