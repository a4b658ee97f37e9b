"""Target 5: ``outpost audit verify`` over 1,000,000 events in <= 30 s.

The events are written by the real ``outpost.audit.service.record`` (the code every
change goes through), in batches of 10,000 sharing one timestamp, with realistic
asset snapshots as before/after. The CLI is then timed as a subprocess on the
database, and on a copy where one row's ``after`` was altered by SQL: it must exit 1
naming that event.
"""

from __future__ import annotations

import subprocess
from typing import Any

from sqlalchemy import text, update

from bench.common import OUTPOST, Context, Result, Timer, at_most, info, outpost_env
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.audit.models import AuditEvent
from outpost.db import Database
from outpost.identity import service as identity
from outpost.identity.principal import RequestMeta

NAME = "audit"
TARGET_S = 30.0
BATCH = 10_000
PAYLOADS = 997
ACTIONS = (Action.ASSET_UPDATED, Action.ASSET_UPDATED, Action.ASSET_MOVED, Action.ASSET_CREATED)
META = RequestMeta(
    request_id="bench-audit",
    source_ip="10.20.30.40",
    user_agent="outpost-bench/1.0",
    reason="bench: nightly config push",
)


def _snapshot(number: int, revision: int) -> dict[str, Any]:
    site = number % 500
    return {
        "id": f"ast_bench{number:017d}",
        "site_id": f"sit_bench{site:017d}",
        "type": "sensor",
        "parent_id": f"ast_benchctl{site:014d}",
        "name": f"S{site:03d} temperature {number % 12}",
        "serial": f"S{site:03d}-CTL1-SN{number % 12:02d}",
        "tags": ["demo"],
        "config": {
            "channel": number % 12,
            "kind": "temperature",
            "unit": "degC",
            "sampling_interval_s": 1 + (number + revision) % 60,
        },
        "revision": revision,
    }


def _change(number: int, snapshots: list[dict[str, Any]]) -> audit.Change:
    action = ACTIONS[number % len(ACTIONS)]
    before = None if action == Action.ASSET_CREATED else snapshots[number % PAYLOADS]
    after = snapshots[(number + 1) % PAYLOADS]
    return audit.Change(action, "asset", f"ast_bench{number % 25_000:017d}", before, after)


def generate(url: str, total: int) -> tuple[str, int]:
    """An organization whose chain holds ``total`` more events; (org id, last seq)."""
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            org_id = identity.create_organization(session, "Audit Heavy").id
        actor = identity.system_actor(org_id, "outpost-bench", META)
        snapshots = [_snapshot(n, 1 + n % 7) for n in range(PAYLOADS)]
        for start in range(0, total, BATCH):
            with database.unit_of_work() as session:
                audit.record(
                    session,
                    actor,
                    [_change(n, snapshots) for n in range(start, min(total, start + BATCH))],
                )
        if database.dialect == "postgresql":
            with database.write_engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    text("VACUUM ANALYZE audit_events")
                )
    finally:
        database.dispose()
    return org_id, 1 + total  # the organization's own creation is event 1


def verify(ctx: Context, url: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    with Timer() as timer:
        done = subprocess.run(
            [OUTPOST, "audit", "verify"],
            env=outpost_env(ctx, url),
            capture_output=True,
            text=True,
            check=False,
        )
    return timer.seconds, done


def run(ctx: Context) -> list[Result]:
    total = 20_000 if ctx.quick else 1_000_000
    url = ctx.fresh_database("audit")
    with Timer() as generating:
        org_id, last = generate(url, total)
    ctx.log(f"generated {total:,} chained events in {generating.seconds:.1f} s")
    seconds, intact = verify(ctx, url)
    if intact.returncode != 0 or f"{last} events, chain intact" not in intact.stdout:
        raise RuntimeError(f"verify on the intact chain: {intact.stdout}{intact.stderr}")
    tampered_url = ctx.copy_database(url, "audit_tampered")
    victim = last // 2
    database = Database.connect(tampered_url)
    try:
        with database.unit_of_work() as session:
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.org_id == org_id, AuditEvent.seq == victim)
                .values(after='{"tampered":true}')
            )
    finally:
        database.dispose()
    tampered_seconds, tampered = verify(ctx, tampered_url)
    named = f"BROKEN at event seq {victim}:" in tampered.stderr
    if tampered.returncode != 1 or not named:
        raise RuntimeError(f"verify on the tampered copy: {tampered.stdout}{tampered.stderr}")
    ctx.log("tampered copy: " + tampered.stderr.strip())
    return [
        info(NAME, f"generate {total:,} chained events (setup)", generating.seconds, "s"),
        at_most(NAME, f"outpost audit verify, {last:,} events", seconds, TARGET_S, "s"),
        info(NAME, "  its exit code (intact)", intact.returncode, "exit"),
        info(NAME, "  verify throughput", last / seconds, "events/s"),
        info(NAME, f"verify, tampered copy (seq {victim} altered)", tampered_seconds, "s"),
        info(NAME, "  its exit code (tampered; names the event)", tampered.returncode, "exit"),
    ]
