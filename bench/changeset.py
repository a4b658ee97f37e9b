"""Target 3: a 1,000-operation change set: dry run <= 1 s, apply <= 2 s.

Two shapes, each 50 operations on each of 20 sites of the demo fleet:

- ``updates``: a config merge patch on every asset of the 20 sites;
- ``mixed``: 30 config updates, 3 moves (a sensor to the other controller, on a free
  channel), 8 deletes (badges) and 9 creates (new badges) per site.

Each shape runs in-process (``ChangeSetIn`` validation + ``run_changeset``, in one
unit of work, commit included) and over HTTP ``POST /api/v1/changesets`` against the
real server; the dry run and the apply of one shape touch the same sites, in-process
and HTTP runs touch different sites.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bench.common import (
    Context,
    Result,
    Server,
    Timer,
    at_most,
    expect,
    running_server,
    seeded_fleet,
)
from outpost.db import Database
from outpost.demo import DEMO_ORG
from outpost.identity import service as identity
from outpost.identity.models import Organization
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset, Site
from outpost.inventory.schemas import ChangeSetIn

NAME = "changeset"
DRY_RUN_S = 1.0
APPLY_S = 2.0
SITES_PER_SET = 20

Fleet = dict[str, dict[str, str]]  # site id -> serial suffix (e.g. "CTL1-SN03") -> asset id


def load_fleet(url: str) -> tuple[str, list[str], Fleet]:
    """The demo org's id, its site ids in code order, and each site's assets by serial suffix."""
    database = Database.connect(url)
    try:
        with database.unit_of_work(write=False) as session:
            org_id = session.scalar(select(Organization.id).where(Organization.name == DEMO_ORG))
            assert org_id is not None
            sites = list(session.scalars(select(Site.id).order_by(Site.code)))
            fleet: Fleet = {}
            for row in session.execute(select(Asset.id, Asset.site_id, Asset.serial)):
                fleet.setdefault(row.site_id, {})[row.serial.split("-", 1)[1]] = row.id
    finally:
        database.dispose()
    return org_id, sites, fleet


def _update(asset_id: str, patch: dict[str, Any]) -> dict[str, Any]:
    return {"op": "update", "id": asset_id, "patch": patch}


def update_ops(site_assets: dict[str, str], tag: int) -> list[dict[str, Any]]:
    """A config merge patch on each of a demo site's 50 assets (valid together).

    Every value differs from the demo's, so each operation is a real change.
    """
    ops = [_update(site_assets["GW"], {"config": {"upload_interval_s": 120 + tag % 60}})]
    for c in (1, 2):
        ops.append(_update(site_assets[f"CTL{c}"], {"config": {"channels": 13 + tag % 3}}))
        for channel in range(12):
            ops.append(
                _update(
                    site_assets[f"CTL{c}-SN{channel:02d}"],
                    {"config": {"sampling_interval_s": 11 + (channel + tag) % 17}},
                )
            )
        ops.append(_update(site_assets[f"CTL{c}-BR"], {"config": {"door": f"Door {c}/{tag}"}}))
    for m in (1, 2):
        ops.append(_update(site_assets[f"MTR{m}"], {"config": {"ct_ratio": 100 + tag}}))
    for i in range(1, 11):
        ops.append(
            _update(site_assets[f"INV{i:02d}"], {"config": {"rated_power_kw": 20.0 + tag % 30}})
        )
    for b in range(1, 10):
        ops.append(_update(site_assets[f"BDG{b}"], {"config": {"holder": f"Tech {b}/{tag}"}}))
    return ops


def mixed_ops(site_id: str, site_assets: dict[str, str], tag: int) -> list[dict[str, Any]]:
    """30 updates, 3 moves, 8 deletes and 9 creates on one demo site (valid together)."""
    ops = []
    sensors = [f"CTL1-SN{n:02d}" for n in range(3, 12)] + [f"CTL2-SN{n:02d}" for n in range(11)]
    for number, suffix in enumerate(sensors):
        ops.append(
            _update(site_assets[suffix], {"config": {"sampling_interval_s": 31 + number + tag % 9}})
        )
    for i in range(1, 11):
        ops.append(_update(site_assets[f"INV{i:02d}"], {"config": {"rated_power_kw": 55.0}}))
    for k in range(3):  # CTL2 offers 16 channels: 0-11 sensors, 12 its badge reader, 13-15 free
        ops.append(
            _update(
                site_assets[f"CTL1-SN{k:02d}"],
                {"parent_id": site_assets["CTL2"], "config": {"channel": 13 + k}},
            )
        )
    for b in range(1, 9):
        ops.append({"op": "delete", "id": site_assets[f"BDG{b}"]})
    for n in range(1, 10):
        ops.append(
            {
                "op": "create",
                "site_id": site_id,
                "type": "badge",
                "name": f"New badge {n}",
                "serial": f"NEW-{site_id[-8:]}-{tag}-{n}",
                "config": {"holder": f"New technician {n}", "zones": ["lobby"]},
                "tags": ["bench"],
            }
        )
    return ops


def build(shape: str, sites: list[str], fleet: Fleet, tag: int = 0) -> dict[str, Any]:
    operations: list[dict[str, Any]] = []
    for site_id in sites:
        if shape == "updates":
            operations.extend(update_ops(fleet[site_id], tag))
        else:
            operations.extend(mixed_ops(site_id, fleet[site_id], tag))
    return {"operations": operations, "reason": f"bench {shape}"}


def in_process(url: str, org_id: str, payload: dict[str, Any], *, dry_run: bool) -> float:
    database = Database.connect(url)
    try:
        actor = identity.system_actor(org_id, "bench")
        with Timer() as timer, database.unit_of_work() as session:
            outcome = inventory.run_changeset(
                session, actor, ChangeSetIn.model_validate(payload), dry_run=dry_run
            )
        if not outcome.plan.valid or len(outcome.plan.diffs) != len(payload["operations"]):
            raise RuntimeError(f"invalid change set: {outcome.plan.located_violations()[:3]}")
    finally:
        database.dispose()
    return timer.seconds


def over_http(server: Server, payload: dict[str, Any], *, dry_run: bool) -> float:
    client = server.client()
    try:
        client.request("GET", "/api/v1/asset-types")  # a warm connection; not timed
        path = "/api/v1/changesets" + ("?dry_run=true" if dry_run else "")
        response = expect(client.request("POST", path, payload), 200, "POST /changesets")
        result = response.json()
        if not result["valid"] or result["applied"] == dry_run:
            raise RuntimeError(f"unexpected change set result: {result['violations'][:3]}")
    finally:
        client.close()
    return response.seconds


def run(ctx: Context) -> list[Result]:
    url, _ = seeded_fleet(ctx, "changeset")
    org_id, sites, fleet = load_fleet(url)
    groups = [sites[i * SITES_PER_SET : (i + 1) * SITES_PER_SET] for i in range(4)]
    plans = {
        ("in-process", "updates"): build("updates", groups[0], fleet, 1),
        ("in-process", "mixed"): build("mixed", groups[1], fleet, 2),
        ("HTTP", "updates"): build("updates", groups[2], fleet, 3),
        ("HTTP", "mixed"): build("mixed", groups[3], fleet, 4),
    }
    # Warm the process (validators, statement caches) on a different site, untimed.
    in_process(url, org_id, build("updates", sites[-1:], fleet, 9), dry_run=True)
    results: list[Result] = []
    timings: dict[tuple[str, str, bool], float] = {}
    for (where, shape), payload in plans.items():
        if where == "in-process":
            timings[(where, shape, True)] = in_process(url, org_id, payload, dry_run=True)
            timings[(where, shape, False)] = in_process(url, org_id, payload, dry_run=False)
    with running_server(ctx, url, "changeset") as server:
        over_http(server, build("updates", sites[-2:-1], fleet, 9), dry_run=True)  # warm-up
        for (where, shape), payload in plans.items():
            if where == "HTTP":
                timings[(where, shape, True)] = over_http(server, payload, dry_run=True)
                timings[(where, shape, False)] = over_http(server, payload, dry_run=False)
    for (where, shape, dry_run), seconds in timings.items():
        count = len(plans[(where, shape)]["operations"])
        label = f"{count:,}-op {shape} {where}: " + ("dry run" if dry_run else "apply")
        results.append(at_most(NAME, label, seconds, DRY_RUN_S if dry_run else APPLY_S, "s"))
    return results
