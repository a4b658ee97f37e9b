"""Target 2: one validated PATCH of an asset's config over HTTP: p50 <= 10 ms, p99 <= 50 ms.

The real server (gunicorn, 2 workers x 4 threads) on the demo fleet, one keep-alive
client in one thread. A GET fetches each target asset's ETag; then N sequential
PATCHes cycle over sensors (``sampling_interval_s``) and gateways
(``upload_interval_s``) of different sites, each sending as If-Match the ETag of
that asset's previous response. Every value is valid and differs from the last.
"""

from __future__ import annotations

import random

from sqlalchemy import select

from bench.common import (
    Context,
    Result,
    expect,
    info,
    latency_results,
    running_server,
    seeded_fleet,
)
from outpost.db import Database
from outpost.inventory.models import Asset

NAME = "patch"
TARGETS_MS = {"p50": 10.0, "p99": 50.0}


def pick_targets(url: str, sites: int) -> list[tuple[str, str, str]]:
    """(asset id, config key, type) for a sensor and the gateway of ``sites`` random sites."""
    database = Database.connect(url)
    try:
        with database.unit_of_work(write=False) as session:
            rows = session.execute(
                select(Asset.id, Asset.site_id, Asset.type, Asset.serial).where(
                    Asset.type.in_(["sensor", "gateway"])
                )
            ).all()
    finally:
        database.dispose()
    by_site: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.type == "gateway" or row.serial.endswith("-CTL1-SN00"):
            by_site.setdefault(row.site_id, {})[row.type] = row.id
    chosen = random.Random(2).sample(sorted(by_site), min(sites, len(by_site)))
    targets = []
    for site_id in chosen:
        targets.append((by_site[site_id]["sensor"], "sampling_interval_s", "sensor"))
        targets.append((by_site[site_id]["gateway"], "upload_interval_s", "gateway"))
    return targets


def run(ctx: Context) -> list[Result]:
    count = 100 if ctx.quick else 1000
    url, _ = seeded_fleet(ctx, "patch")
    targets = pick_targets(url, 10 if ctx.quick else 50)
    with running_server(ctx, url, "patch") as server:
        client = server.client()
        etags: dict[str, str] = {}
        values: dict[str, int] = {}
        get_ms = []
        for asset_id, key, _type in targets:
            response = expect(client.request("GET", f"/api/v1/assets/{asset_id}"), 200, "GET")
            etags[asset_id] = response.headers["etag"]
            values[asset_id] = int(response.json()["config"][key])
            get_ms.append(response.seconds * 1000)
        patch_ms = []
        for number in range(count):
            asset_id, key, type_ = targets[number % len(targets)]
            if type_ == "sensor":  # 1..60 s, never above the gateway's upload interval
                value = values[asset_id] % 60 + 1
            else:  # 61..3600 s, never below any sensor's sampling interval
                value = 61 + (values[asset_id] - 60) % 3540
            response = client.request(
                "PATCH",
                f"/api/v1/assets/{asset_id}",
                {"config": {key: value}},
                {"If-Match": etags[asset_id], "Content-Type": "application/merge-patch+json"},
            )
            expect(response, 200, f"PATCH {asset_id}")
            body = response.json()
            if body["config"][key] != value:
                raise RuntimeError(f"PATCH {asset_id} did not apply {key}={value}")
            etags[asset_id] = response.headers["etag"]
            values[asset_id] = value
            patch_ms.append(response.seconds * 1000)
        reconnects = client.reconnects
        client.close()
    return [
        *latency_results(NAME, "PATCH config", patch_ms, TARGETS_MS),
        *latency_results(NAME, "GET asset (warm-up)", get_ms, {})[:1],
        info(NAME, "client reconnects during the run", reconnects, ""),
    ]
