"""Target 1: seed / bulk import of 25,000 assets with full validation in <= 10 s.

``seed_demo`` in one unit of work (500 sites, then one 25,000-operation change set:
every rule and one audit event per asset), and a 25,000-row CSV import through
``importer.import_csv(apply=True)`` (which plans twice: its dry run, then the apply).
"""

from __future__ import annotations

import csv
import io
import json

from bench.common import Context, Result, Timer, at_most, info
from outpost.db import Database
from outpost.demo import TIMEZONES, seed_demo, site_assets
from outpost.identity import service as identity
from outpost.inventory import importer
from outpost.inventory import service as inventory
from outpost.inventory.schemas import SiteCreate

NAME = "seed"
TARGET_S = 10.0


def run(ctx: Context) -> list[Result]:
    sites = 40 if ctx.quick else 500
    assets = sites * 50
    return [*_seed(ctx, sites, assets), *_import(ctx, sites, assets)]


def _seed(ctx: Context, sites: int, assets: int) -> list[Result]:
    url = ctx.fresh_database("seed")
    database = Database.connect(url)
    try:
        with Timer() as timer, database.unit_of_work() as session:
            result = seed_demo(session, sites=sites)
    finally:
        database.dispose()
    if result.assets != assets:
        raise RuntimeError(f"seed created {result.assets} assets, expected {assets}")
    return [
        at_most(NAME, f"seed_demo: {sites} sites, {assets:,} assets", timer.seconds, TARGET_S, "s"),
        info(NAME, "seed_demo throughput", assets / timer.seconds, "assets/s"),
    ]


def demo_like_csv(site_codes: list[str]) -> str:
    """The demo fleet's assets for these sites, as importer CSV rows (parents by serial)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(importer.COLUMNS)
    for number, code in enumerate(site_codes):
        for op in site_assets("unused", number):
            writer.writerow(
                [
                    code,
                    op.type,
                    op.name,
                    op.serial,
                    op.parent_ref or "",
                    ";".join(op.tags),
                    json.dumps(op.config),
                ]
            )
    return out.getvalue()


def _import(ctx: Context, sites: int, assets: int) -> list[Result]:
    url = ctx.fresh_database("import")
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            org = identity.create_organization(session, "Import Energy")
            actor = identity.system_actor(org.id, "bench import")
            codes = []
            for number in range(sites):
                code = f"IMP-{number + 1:03d}"
                inventory.create_site(
                    session,
                    actor,
                    SiteCreate(
                        name=f"Imported plant {number + 1}",
                        code=code,
                        timezone=TIMEZONES[number % len(TIMEZONES)],
                        grid_connection_kw=1000.0,
                        tags=["imported"],
                    ),
                )
                codes.append(code)
        text = demo_like_csv(codes)
        with Timer() as timer, database.unit_of_work() as session:
            report = importer.import_csv(session, actor, text, apply=True)
    finally:
        database.dispose()
    if not report.applied or report.rows != assets:
        raise RuntimeError("the CSV import failed: " + "; ".join(report.lines()[:5]))
    return [
        at_most(NAME, f"CSV import --apply: {assets:,} rows", timer.seconds, TARGET_S, "s"),
    ]
