"""Conflict prevention under real concurrency: the real server, real HTTP, a real database.

Each test starts ``outpost serve`` (gunicorn, 2 worker processes x 4 threads) against the
suite's database (SQLite by default, PostgreSQL with ``OUTPOST_TEST_POSTGRES_URL``) and
hammers it from 8 client threads, each with its own keep-alive connection.

What is checked, independently of the code under test:

* the final fleet (``GET /api/v1/assets``) satisfies the cross-asset invariants,
  recomputed here (distinct Modbus addresses per gateway, distinct channels per controller,
  channel below the controller's channel count, bus devices within capacity) and by
  ``rules.check_all`` as a second opinion;
* every state the fleet passed through does too: the audit log is replayed in ``seq``
  order, which is commit order because appending takes the organization's audit head row
  lock until commit, and the invariants are checked after every event;
* every 201 names an asset that exists (unless its writer deleted it), every 422 carries
  only the expected rule codes, no request gets a 500, and 409s are only ``conflict-retry``;
* read-modify-write with ``If-Match`` loses no update.

Run with ``pytest -s`` to see the counts.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from outpost.db import is_sqlite
from outpost.inventory.rules import check_all
from outpost.inventory.state import AssetState, ProposedState, SiteState
from support.server import RunningServer, running_server

pytestmark = pytest.mark.slow

WRITERS = 8
ROUNDS = 200
ADDRESS_POOL = tuple(range(1, 9))  # 8 Modbus addresses for up to BUS_CAPACITY meters
BUS_CAPACITY = 6
CHANNELS = 4
CHANNEL_POOL = tuple(range(CHANNELS + 1))  # one channel that does not exist
DELETE_SHARE = 0.3
RACE_CODES = frozenset(
    {
        "modbus.address_taken",
        "gateway.bus_devices_exceeded",
        "channel.taken",
        "channel.out_of_range",
    }
)
CONFLICT_RETRY = "urn:outpost:problem:conflict-retry"


# --- a small HTTP client: one keep-alive connection per thread ---------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def problem_type(self) -> str | None:
        return self.body.get("type") if isinstance(self.body, dict) else None

    @property
    def codes(self) -> set[str]:
        errors = self.body.get("errors", []) if isinstance(self.body, dict) else []
        return {e["code"] for e in errors}


class Client:
    def __init__(self, server: RunningServer, token: str) -> None:
        self.server = server
        self.token = token
        self.connection = server.connection()
        self.reconnects = 0

    def close(self) -> None:
        self.connection.close()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        payload = None if body is None else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=payload, headers=sent)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection before reading the request.
                self.connection.close()
                self.connection = self.server.connection()
                self.reconnects += 1
                if attempt == 2:
                    raise
        content_type = response.getheader("Content-Type", "")
        parsed = json.loads(raw) if raw and "json" in content_type else raw.decode()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body)


def list_all(client: Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    separator = "&" if "?" in path else "?"
    while True:
        reply = client.get(path + (f"{separator}cursor={cursor}" if cursor else ""))
        assert reply.status == 200, reply.body
        items.extend(reply.body["items"])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return items


# --- the fleet under test -----------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    site_id: str
    gateway_id: str
    controller_id: str


def build_fleet(client: Client) -> Fleet:
    site = client.post("/api/v1/sites", {"name": "Race plant", "code": "RACE"})
    assert site.status == 201, site.body
    site_id = site.body["id"]
    gateway = client.post(
        "/api/v1/assets",
        {
            "site_id": site_id,
            "type": "gateway",
            "name": "gw",
            "serial": "RACE-GW",
            "config": {
                "ip": "10.9.0.1",
                "subnet": "10.9.0.0/24",
                "upload_interval_s": 60,
                "max_controllers": 1,
                "max_bus_devices": BUS_CAPACITY,
            },
        },
    )
    assert gateway.status == 201, gateway.body
    controller = client.post(
        "/api/v1/assets",
        {
            "site_id": site_id,
            "type": "controller",
            "parent_id": gateway.body["id"],
            "name": "ctl",
            "serial": "RACE-CTL",
            "config": {"channels": CHANNELS},
        },
    )
    assert controller.status == 201, controller.body
    return Fleet(site_id, gateway.body["id"], controller.body["id"])


def meter(fleet: Fleet, address: int) -> dict[str, Any]:
    return {
        "site_id": fleet.site_id,
        "type": "meter",
        "parent_id": fleet.gateway_id,
        "name": f"meter @{address}",
        "serial": f"M-{uuid.uuid4().hex[:12]}",
        "config": {"modbus_address": address, "ct_ratio": 200, "phases": 3},
    }


def sensor(fleet: Fleet, channel: int) -> dict[str, Any]:
    return {
        "site_id": fleet.site_id,
        "type": "sensor",
        "parent_id": fleet.controller_id,
        "name": f"sensor ch{channel}",
        "serial": f"S-{uuid.uuid4().hex[:12]}",
        "config": {
            "channel": channel,
            "kind": "temperature",
            "unit": "C",
            "sampling_interval_s": 30,
        },
    }


# --- the invariants, recomputed here ---------------------------------------------------------


def invariant_violations(assets: Iterable[dict[str, Any]]) -> list[str]:
    """Every broken cross-asset invariant, computed without the rules module."""
    assets = list(assets)
    by_id = {a["id"]: a for a in assets}
    addresses: dict[str, list[int]] = defaultdict(list)
    channels: dict[str, list[int]] = defaultdict(list)
    controllers: Counter[str] = Counter()
    for asset in assets:
        config = asset["config"]
        if asset["type"] in {"meter", "inverter"}:
            addresses[asset["parent_id"]].append(config["modbus_address"])
        elif asset["type"] in {"sensor", "badge_reader"}:
            channels[asset["parent_id"]].append(config["channel"])
        elif asset["type"] == "controller":
            controllers[asset["parent_id"]] += 1
    found: list[str] = []
    for gateway_id, used in addresses.items():
        for address, count in Counter(used).items():
            if count > 1:
                found.append(f"modbus address {address} used {count}x on {gateway_id}")
        limit = by_id[gateway_id]["config"]["max_bus_devices"]
        if len(used) > limit:
            found.append(f"{len(used)} bus devices on {gateway_id}, capacity {limit}")
    for controller_id, used in channels.items():
        offered = by_id[controller_id]["config"]["channels"]
        for channel, count in Counter(used).items():
            if count > 1:
                found.append(f"channel {channel} used {count}x on {controller_id}")
            if channel >= offered:
                found.append(f"channel {channel} on {controller_id} which has {offered}")
    for gateway_id, count in controllers.items():
        limit = by_id[gateway_id]["config"]["max_controllers"]
        if count > limit:
            found.append(f"{count} controllers on {gateway_id}, capacity {limit}")
    return found


def rule_violations(site_id: str, assets: Iterable[dict[str, Any]]) -> list[str]:
    """The rules module's verdict on the same state (a second opinion)."""
    states = {
        a["id"]: AssetState(
            a["id"],
            a["site_id"],
            a["type"],
            a["parent_id"],
            a["name"],
            a["serial"],
            a["config"],
            tuple(a["tags"]),
        )
        for a in assets
    }
    proposed = ProposedState({site_id: SiteState(site_id, "RACE")}, states, frozenset(states))
    return [f"{v.code}: {v.message}" for v in check_all(proposed)]


@dataclass
class History:
    events: int
    invalid_states: int
    first: list[str]


def replay_audit(client: Client, site_id: str) -> History:
    """Rebuild the site's asset states from the audit log, checking each committed state."""
    events = list_all(client, "/api/v1/audit?object_type=asset&limit=1000")
    events.sort(key=lambda e: e["seq"])
    state: dict[str, dict[str, Any]] = {}
    invalid, first = 0, []
    for event in events:
        after = event["after"]
        if after is None:
            state.pop(event["object_id"], None)
        elif after["site_id"] == site_id:
            state[event["object_id"]] = after
        problems = invariant_violations(state.values())
        if problems:
            invalid += 1
            first = first or [f"after audit seq {event['seq']}: {p}" for p in problems]
    return History(len(events), invalid, first)


# --- the invariant race -------------------------------------------------------------------


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    refusal_codes: Counter[str] = field(default_factory=Counter)
    created: list[str] = field(default_factory=list)
    alive: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reconnects: int = 0

    def merge(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)
        self.refusal_codes.update(other.refusal_codes)
        self.created += other.created
        self.alive += other.alive
        self.unexpected += other.unexpected
        self.reconnects += other.reconnects


def _classify(tally: Tally, action: str, reply: Reply) -> str:
    if reply.status == 422 and reply.codes and reply.codes <= RACE_CODES:
        tally.refusal_codes.update(reply.codes)
        outcome = "refused"
    elif reply.status == 409 and reply.problem_type == CONFLICT_RETRY:
        outcome = "conflict-retry"
    elif reply.status in {201, 204}:
        outcome = "ok"
    else:
        outcome = "unexpected"
        tally.unexpected.append(f"{action}: {reply.status} {reply.body!r}"[:500])
    tally.outcomes[f"{action} {outcome}"] += 1
    return outcome


def race_writer(
    server: RunningServer, token: str, fleet: Fleet, seed: int, start: threading.Barrier
) -> Tally:
    rng = random.Random(seed)
    client = Client(server, token)
    tally = Tally()
    mine: list[str] = []
    start.wait()
    try:
        for _ in range(ROUNDS):
            if mine and rng.random() < DELETE_SHARE:
                asset_id = mine.pop(rng.randrange(len(mine)))
                reply = client.request(
                    "DELETE", f"/api/v1/assets/{asset_id}", headers={"If-Match": '"1"'}
                )
                if _classify(tally, "delete", reply) != "ok":
                    mine.append(asset_id)
                continue
            if rng.random() < 0.6:
                action, body = "create meter", meter(fleet, rng.choice(ADDRESS_POOL))
            else:
                action, body = "create sensor", sensor(fleet, rng.choice(CHANNEL_POOL))
            reply = client.post("/api/v1/assets", body)
            if _classify(tally, action, reply) == "ok":
                tally.created.append(reply.body["id"])
                mine.append(reply.body["id"])
    finally:
        client.close()
    tally.alive = mine
    tally.reconnects = client.reconnects
    return tally


@dataclass
class RaceResult:
    tally: Tally
    final_assets: list[dict[str, Any]]
    final_violations: list[str]
    final_rule_violations: list[str]
    history: History
    elapsed_s: float

    def report(self, label: str) -> str:
        t = self.tally
        return (
            f"\n[{label}] {WRITERS} writers x {ROUNDS} rounds in {self.elapsed_s:.1f} s: "
            f"{dict(sorted(t.outcomes.items()))}; refusal codes {dict(t.refusal_codes)}; "
            f"unexpected {len(t.unexpected)}; reconnects {t.reconnects}; "
            f"final assets {len(self.final_assets)}; "
            f"final invariant violations {len(self.final_violations)} "
            f"(rules: {len(self.final_rule_violations)}); "
            f"audit events {self.history.events}, invalid committed states "
            f"{self.history.invalid_states} {self.history.first[:3]}"
        )


def run_race(server: RunningServer, token: str) -> RaceResult:
    setup = Client(server, token)
    try:
        fleet = build_fleet(setup)
        start = threading.Barrier(WRITERS)
        began = time.monotonic()
        with ThreadPoolExecutor(WRITERS) as pool:
            futures = [
                pool.submit(race_writer, server, token, fleet, seed, start)
                for seed in range(WRITERS)
            ]
            tallies = [f.result() for f in futures]
        elapsed = time.monotonic() - began
        tally = Tally()
        for each in tallies:
            tally.merge(each)
        final = list_all(setup, f"/api/v1/assets?site_id={fleet.site_id}&limit=500")
        history = replay_audit(setup, fleet.site_id)
    finally:
        setup.close()
    fixed = {fleet.gateway_id, fleet.controller_id}
    raced = {a["id"] for a in final if a["id"] not in fixed}
    assert raced == set(tally.alive), "201s and 204s do not match the stored assets"
    return RaceResult(
        tally,
        final,
        invariant_violations(final),
        rule_violations(fleet.site_id, final),
        history,
        elapsed,
    )


def test_cross_asset_invariants_hold_under_concurrent_writers(database_url, tenant, tmp_path):
    with running_server(database_url, tmp_path / "server") as server:
        result = run_race(server, tenant.admin)
    print(result.report(f"locked, {_engine(database_url)}"))
    tally = result.tally
    assert tally.unexpected == []
    assert tally.outcomes["create meter ok"] > 0 and tally.outcomes["create sensor ok"] > 0
    assert tally.outcomes["create meter refused"] > 0, "the pool should make collisions frequent"
    assert tally.outcomes["delete refused"] == 0
    assert result.final_violations == []
    assert result.final_rule_violations == []
    assert result.history.invalid_states == 0, result.history.first


def test_negative_control_without_scope_locking_the_race_is_visible(database_url, tenant, tmp_path):
    """The same race with ``OUTPOST_UNSAFE_SCOPE_LOCKING=false`` proves the test can fail.

    PostgreSQL (READ COMMITTED): without ``SELECT … FOR UPDATE`` on the site, two writers
    read the same assets, each finds its new meter valid, and both commit: write skew. The
    audit replay and usually the final state show duplicate addresses or an overfull bus.

    SQLite (WAL): without ``BEGIN IMMEDIATE`` a write transaction starts as a deferred
    read transaction on a snapshot. When it tries to write after another writer committed
    since that snapshot, SQLite refuses the upgrade with ``SQLITE_BUSY_SNAPSHOT`` ("database
    is locked"), whatever the busy timeout, and the API maps it to 409 ``conflict-retry``.
    SQLite is therefore serializable on its own and write skew cannot happen; what the
    missing lock shows instead is writers failing with 409 where they would have waited.
    So on SQLite this asserts conflicts (and no invalid state), on PostgreSQL violations.
    """
    with running_server(database_url, tmp_path / "server", scope_locking=False) as server:
        result = run_race(server, tenant.admin)
    print(result.report(f"UNLOCKED, {_engine(database_url)}"))
    tally = result.tally
    assert tally.unexpected == []
    conflicts = sum(n for outcome, n in tally.outcomes.items() if "conflict-retry" in outcome)
    if is_sqlite(database_url):
        assert conflicts > 0
        assert result.history.invalid_states == 0
        assert result.final_violations == []
    else:
        assert result.history.invalid_states > 0, "write skew expected without scope locks"


# --- lost updates ---------------------------------------------------------------------------


@dataclass
class Counts:
    ok: int = 0
    stale: int = 0
    conflict: int = 0
    revisions: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def counter_writer(
    server: RunningServer, token: str, asset_id: str, start: threading.Barrier
) -> Counts:
    client = Client(server, token)
    counts = Counts()
    path = f"/api/v1/assets/{asset_id}"
    start.wait()
    try:
        for _ in range(ROUNDS):
            current = client.get(path)
            assert current.status == 200, current.body
            value = int(current.body["name"].removeprefix("counter-"))
            reply = client.request(
                "PATCH",
                path,
                {"name": f"counter-{value + 1}"},
                {
                    "If-Match": current.headers["etag"],
                    "Content-Type": "application/merge-patch+json",
                },
            )
            if reply.status == 200:
                counts.ok += 1
                counts.revisions.append(reply.body["revision"])
                assert reply.headers["etag"] == f'"{reply.body["revision"]}"'
            elif reply.status == 412:
                counts.stale += 1
                assert reply.headers["etag"] == f'"{reply.body["current"]["revision"]}"'
            elif reply.status == 409 and reply.problem_type == CONFLICT_RETRY:
                counts.conflict += 1
            else:
                counts.unexpected.append(f"{reply.status} {reply.body!r}"[:500])
    finally:
        client.close()
    return counts


def run_counters(server: RunningServer, token: str) -> tuple[Counts, dict[str, Any], float]:
    setup = Client(server, token)
    try:
        site = setup.post("/api/v1/sites", {"name": "Counter plant", "code": "CNT"})
        assert site.status == 201, site.body
        asset = setup.post(
            "/api/v1/assets",
            {
                "site_id": site.body["id"],
                "type": "badge",
                "name": "counter-0",
                "serial": "COUNTER",
                "config": {"holder": "nobody", "zones": []},
            },
        )
        assert asset.status == 201, asset.body
        asset_id = asset.body["id"]
        start = threading.Barrier(WRITERS)
        began = time.monotonic()
        with ThreadPoolExecutor(WRITERS) as pool:
            futures = [
                pool.submit(counter_writer, server, token, asset_id, start) for _ in range(WRITERS)
            ]
            results = [f.result() for f in futures]
        elapsed = time.monotonic() - began
        final = setup.get(f"/api/v1/assets/{asset_id}").body
        updates = list_all(
            setup, f"/api/v1/audit?object_id={asset_id}&action=inventory.asset.updated&limit=1000"
        )
    finally:
        setup.close()
    total = Counts()
    for each in results:
        total.ok += each.ok
        total.stale += each.stale
        total.conflict += each.conflict
        total.revisions += each.revisions
        total.unexpected += each.unexpected
    final["audited_updates"] = len(updates)
    return total, final, elapsed


def test_read_modify_write_with_if_match_loses_no_update(database_url, tenant, tmp_path):
    with running_server(database_url, tmp_path / "server") as server:
        counts, final, elapsed = run_counters(server, tenant.admin)
    counter = int(final["name"].removeprefix("counter-"))
    print(
        f"\n[lost updates, locked, {_engine(database_url)}] {WRITERS} writers x {ROUNDS} rounds "
        f"in {elapsed:.1f} s: 200 {counts.ok}, 412 {counts.stale}, 409 {counts.conflict}, "
        f"unexpected {len(counts.unexpected)}; final counter {counter}, "
        f"revision {final['revision']}, audited updates {final['audited_updates']}"
    )
    assert counts.unexpected == []
    assert counts.ok + counts.stale + counts.conflict == WRITERS * ROUNDS
    assert counts.ok > 0
    assert counter == counts.ok == final["revision"] - 1 == final["audited_updates"]
    assert sorted(counts.revisions) == list(range(2, final["revision"] + 1))


def _engine(database_url: str) -> str:
    return "sqlite" if is_sqlite(database_url) else "postgresql"
