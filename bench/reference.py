"""Target 6: at least 100x faster than NetBox for a bulk edit of a few hundred devices.

NetBox cannot run here (it is not on PyPI and there is no network beyond PyPI and
Debian), so the reference is the figure quoted by the issue: a bulk edit of a few
hundred devices takes "tens of seconds" in NetBox; we take 20 s. It is a published
figure, not measured in this run. We measure a 300-operation change set (a config
merge patch on every asset of 6 demo sites) applied over HTTP through the real
server, 5 times on different sites, and compare its median.
"""

from __future__ import annotations

import statistics

from bench.changeset import build, load_fleet, over_http
from bench.common import Context, Result, at_least, info, running_server, seeded_fleet

NAME = "reference"
NETBOX_REFERENCE_S = 20.0
SITES = 6
REPEATS = 9


def run(ctx: Context) -> list[Result]:
    url, _ = seeded_fleet(ctx, "reference")
    _org_id, sites, fleet = load_fleet(url)
    samples = []
    with running_server(ctx, url, "reference") as server:
        over_http(server, build("updates", sites[-1:], fleet, 9), dry_run=True)  # warm-up
        for repeat in range(REPEATS):
            chosen = sites[repeat * SITES : (repeat + 1) * SITES]
            payload = build("updates", chosen, fleet, repeat)
            samples.append(over_http(server, payload, dry_run=False))
    median = statistics.median(samples)
    return [
        info(NAME, f"300-op bulk edit over HTTP: median of {REPEATS}", median, "s"),
        info(NAME, "300-op bulk edit over HTTP: best", min(samples), "s"),
        info(NAME, "NetBox reference (published figure, not measured)", NETBOX_REFERENCE_S, "s"),
        at_least(NAME, "speed-up vs the 20 s reference", NETBOX_REFERENCE_S / median, 100, "x"),
    ]
