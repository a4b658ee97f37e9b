"""Target 4: a page of 50 assets filtered by site: p50 <= 15 ms.

``GET /api/v1/assets?site_id=<random site>&limit=50`` against the real server on the
demo fleet, sequentially from one keep-alive client.
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
from outpost.inventory.models import Site

NAME = "listing"
TARGETS_MS = {"p50": 15.0}


def run(ctx: Context) -> list[Result]:
    count = 100 if ctx.quick else 500
    url, _ = seeded_fleet(ctx, "listing")
    database = Database.connect(url)
    try:
        with database.unit_of_work(write=False) as session:
            sites = list(session.scalars(select(Site.id).order_by(Site.id)))
    finally:
        database.dispose()
    rng = random.Random(4)
    samples = []
    with running_server(ctx, url, "listing") as server:
        client = server.client()
        for _ in range(5):  # warm-up, not timed
            client.request("GET", f"/api/v1/assets?site_id={sites[0]}&limit=50")
        for _ in range(count):
            site_id = rng.choice(sites)
            response = client.request("GET", f"/api/v1/assets?site_id={site_id}&limit=50")
            expect(response, 200, "GET /assets")
            items = response.json()["items"]
            if len(items) != 50 or any(item["site_id"] != site_id for item in items):
                raise RuntimeError(f"GET /assets?site_id={site_id} returned a wrong page")
            samples.append(response.seconds * 1000)
        reconnects = client.reconnects
        client.close()
    return [
        *latency_results(NAME, "GET 50 assets by site", samples, TARGETS_MS),
        info(NAME, "client reconnects during the run", reconnects, ""),
    ]
