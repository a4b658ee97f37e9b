"""Issue 3: the authorization decision adds <= 1 ms p99 per request with 10,000 active
grants in the organization.

The demo fleet (gateway -> controller -> sensor trees), 2,000 more members (role
``none`` or ``viewer``), among them a technician with no standing role and 5 grants
(two sites, three asset subtrees) and "technician B" with 3 of them (two sites, one
subtree), and API tokens for both and the demo admin (inserted directly, in bulk).
That database is copied before any grant exists: the copy is the reference, the same
organization with ZERO grants. Then 10,000 live grants (revoked_at NULL, started,
expiring hours to days from now) go into the original by ``db.bulk_insert``: the
technicians' 8, the rest spread at random over the other members, 40 % on a site,
35 % on a gateway's subtree, 25 % on a controller's.

1. The decision in-process: ``access.holdings`` (the per-request read of the
   membership's role and live grants) + ``inventory.scopes.asset_scope`` (the
   recursive path query, only for holders of a subtree) + ``authorize``, each iteration
   in its own read transaction with the asset already loaded, as ``get_asset`` does.
2. End to end in-process with Flask's test client (the server's work, no network):
   ``GET /api/v1/assets/<id>`` by the admin and by the technician, against the same
   request by the admin in the zero-grant copy. Variants are interleaved in a shuffled
   order each round, so drift and noise hit them alike. Added p99 = p99 - reference p99.
3. ``GET /api/v1/assets?limit=50`` by both technicians (their areas filtered in SQL)
   and by the reference admin. A variant that does not answer 200 is reported as a
   failing figure (its status) instead of being timed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from bench.common import Context, Result, at_most, info, percentile, seeded_fleet
from outpost import ids
from outpost.app import create_app
from outpost.clock import utcnow
from outpost.db import Database, bulk_insert
from outpost.demo import ADMIN_EMAIL, DEMO_ORG
from outpost.identity import access, secrets
from outpost.identity.authz import authorize
from outpost.identity.models import ApiToken, Grant, Membership, Organization, User
from outpost.identity.principal import Principal
from outpost.identity.roles import NO_ROLE, Permission
from outpost.inventory import scopes
from outpost.inventory.models import Asset
from outpost.settings import Settings

NAME = "authz"
TARGET_MS = 1.0
GRANTS = 10_000
MEMBERS = 2_000
TECH_EMAILS = ("technician@bench.outpost.local", "technician-b@bench.outpost.local")
#: Grants of everyone but the technician: their area's kind and role, by weight.
AREA_WEIGHTS = {"site": 40, "gateway": 35, "controller": 25}
ROLE_WEIGHTS = {"technician": 60, "viewer": 30, "operator": 10}
LIST_PATH = "/api/v1/assets?limit=50"


class TestClient(Protocol):
    """Flask's test client, as used here (bench code does not import Flask)."""

    def get(self, path: str, *, headers: dict[str, str]) -> Any: ...


@dataclass(frozen=True)
class Tree:
    """One site's assets, as the grants need them."""

    site_id: str
    gateway: str
    controllers: tuple[str, ...]
    sensors: dict[str, tuple[str, ...]]  # controller id -> its sensors


class Sample(NamedTuple):
    """One timed call, in ms: wall clock, and this process's CPU time (which leaves out
    waiting for the CPU on a busy machine, and PostgreSQL's own work)."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Who:
    label: str
    user_id: str
    role: str
    token: str


@dataclass(frozen=True)
class World:
    org_id: str
    admin: Who
    #: 5 grants: sites 0 and 1 of ``tech_trees`` whole, and as subtrees the gateway of
    #: tree 2, controller 1 of tree 3 and controller 2 of tree 4.
    tech: Who
    #: 3 grants: sites 0 and 1 whole, the gateway of tree 2 (a single subtree).
    tech_b: Who
    tech_trees: tuple[Tree, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        """Sensors (gateway -> controller -> sensor) the technician reads through a subtree."""
        _, _, whole, first, second = self.tech_trees
        return (
            *(sensor for c in whole.controllers for sensor in whole.sensors[c]),
            *first.sensors[first.controllers[0]],
            *second.sensors[second.controllers[1]],
        )

    @property
    def tech_sites(self) -> frozenset[str]:
        """The sites of every asset the technician may read."""
        return frozenset(tree.site_id for tree in self.tech_trees)


def run(ctx: Context) -> list[Result]:
    decisions = 500 if ctx.quick else 3_000
    requests = 300 if ctx.quick else 2_000
    pages = 100 if ctx.quick else 500
    url, _ = seeded_fleet(ctx, "authz")
    rng = random.Random(3)
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            trees = _trees(session)
            world, members = _members(session, rng, trees)
        _analyze(database)
    finally:
        database.dispose()
    reference_url = ctx.copy_database(url, "authz_ref")
    database = Database.connect(url)
    try:
        with database.unit_of_work() as session:
            _grants(session, rng, world, members, trees)
        _analyze(database)
        live = _count_live(database, world.org_id)
    finally:
        database.dispose()
    ctx.log(
        f"{len(trees)} sites, {MEMBERS:,} members, {live:,} live grants "
        f"(the reference copy has none)"
    )
    if live != GRANTS:
        raise RuntimeError(f"{live} live grants, expected {GRANTS}")
    return [
        *_decision(ctx, url, reference_url, world, decisions, rng),
        *_requests(ctx, url, reference_url, world, requests, pages, rng),
    ]


# --- the data -------------------------------------------------------------------------------


def _trees(session: Session) -> list[Tree]:
    rows = session.execute(
        select(Asset.id, Asset.site_id, Asset.type, Asset.parent_id).order_by(Asset.id)
    ).all()
    gateways = {row.site_id: row.id for row in rows if row.type == "gateway"}
    controllers: dict[str, list[str]] = {}
    sensors: dict[str, list[str]] = {}
    for row in rows:
        if row.type == "controller":
            controllers.setdefault(row.site_id, []).append(row.id)
        elif row.type == "sensor" and row.parent_id is not None:
            sensors.setdefault(row.parent_id, []).append(row.id)
    return [
        Tree(
            site_id,
            gateway,
            tuple(controllers[site_id]),
            {c: tuple(sensors[c]) for c in controllers[site_id]},
        )
        for site_id, gateway in sorted(gateways.items())
    ]


def _token(session: Session, org_id: str, user_id: str, now: datetime) -> str:
    secret, prefix = secrets.new_token()
    session.add(
        ApiToken(
            id=ids.new_id("tok"),
            org_id=org_id,
            user_id=user_id,
            name="bench",
            prefix=prefix,
            secret_hash=secrets.digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=30),
        )
    )
    return secret


def _members(session: Session, rng: random.Random, trees: list[Tree]) -> tuple[World, list[str]]:
    """The members and their tokens; no grant yet (this state is the reference)."""
    now = utcnow()
    org_id = session.scalar(select(Organization.id).where(Organization.name == DEMO_ORG))
    admin_id = session.scalar(select(User.id).where(User.email == ADMIN_EMAIL))
    if org_id is None or admin_id is None:
        raise RuntimeError("the demo organization or its admin is missing")
    people = [
        (f"member{number:04d}@bench.outpost.local", NO_ROLE if rng.random() < 0.8 else "viewer")
        for number in range(MEMBERS - len(TECH_EMAILS))
    ] + [(email, NO_ROLE) for email in TECH_EMAILS]
    users = [
        {
            "id": ids.new_id("usr"),
            "email": email,
            "display_name": email,
            "password_hash": "!",  # no password: they only use tokens here
            "is_active": True,
            "created_at": now,
            "password_changed_at": None,
        }
        for email, _ in people
    ]
    memberships = [
        {
            "id": ids.new_id("mem"),
            "org_id": org_id,
            "user_id": user["id"],
            "role": role,
            "created_at": now,
        }
        for user, (_, role) in zip(users, people, strict=True)
    ]
    bulk_insert(session, cast(Table, User.__table__), users)
    bulk_insert(session, cast(Table, Membership.__table__), memberships)
    tech_id, tech_b_id = (user["id"] for user in users[-2:])
    world = World(
        org_id,
        Who("admin", admin_id, "admin", _token(session, org_id, admin_id, now)),
        Who("technician", tech_id, NO_ROLE, _token(session, org_id, tech_id, now)),
        Who("technician B", tech_b_id, NO_ROLE, _token(session, org_id, tech_b_id, now)),
        tuple(rng.sample(trees, 5)),
    )
    return world, [user["id"] for user in users[: -len(TECH_EMAILS)]]


def _grant(
    world: World, user_id: str, role: str, starts: datetime, ends: datetime
) -> dict[str, Any]:
    return {
        "id": ids.new_id("grt"),
        "org_id": world.org_id,
        "user_id": user_id,
        "role": role,
        "site_id": None,
        "asset_id": None,
        "starts_at": starts,
        "expires_at": ends,
        "reason": "bench: maintenance window",
        "granted_by": world.admin.user_id,
        "created_at": starts,
        "revoked_at": None,
        "revoked_by": None,
        "revoke_reason": None,
        "expiry_recorded_at": None,
    }


def _grants(
    session: Session, rng: random.Random, world: World, members: list[str], trees: list[Tree]
) -> None:
    """10,000 live grants: the technicians' 5 and 3, the rest spread over the other members."""
    now = utcnow()
    ends = now + timedelta(days=2)
    site0, site1, site2, site3, site4 = world.tech_trees
    mine = [
        ("technician", {"site_id": site0.site_id}),
        ("viewer", {"site_id": site1.site_id}),
        ("technician", {"asset_id": site2.gateway}),
        ("technician", {"asset_id": site3.controllers[0]}),
        ("viewer", {"asset_id": site4.controllers[1]}),
    ]
    theirs = [(world.tech.user_id, role, area) for role, area in mine] + [
        (world.tech_b.user_id, role, area) for role, area in mine[:3]
    ]
    rows = [
        {**_grant(world, user_id, role, now - timedelta(hours=1), ends), **area}
        for user_id, role, area in theirs
    ]
    kinds, kind_weights = zip(*AREA_WEIGHTS.items(), strict=True)
    roles, role_weights = zip(*ROLE_WEIGHTS.items(), strict=True)
    while len(rows) < GRANTS:
        tree = rng.choice(trees)
        kind = rng.choices(kinds, kind_weights)[0]
        starts = now - timedelta(minutes=rng.randint(1, 3 * 24 * 60))
        row = _grant(
            world,
            rng.choice(members),
            rng.choices(roles, role_weights)[0],
            starts,
            now + timedelta(minutes=rng.randint(120, 4 * 24 * 60)),
        )
        if kind == "site":
            row["site_id"] = tree.site_id
        elif kind == "gateway":
            row["asset_id"] = tree.gateway
        else:
            row["asset_id"] = rng.choice(tree.controllers)
        rows.append(row)
    bulk_insert(session, cast(Table, Grant.__table__), rows)


def _analyze(database: Database) -> None:
    """PostgreSQL: fresh planner statistics, as autovacuum would have within a minute."""
    if database.dialect == "postgresql":
        with database.unit_of_work() as session:
            session.execute(text("ANALYZE"))


def _count_live(database: Database, org_id: str) -> int:
    with database.unit_of_work() as session:
        now = utcnow()
        count = session.scalar(
            select(func.count()).select_from(Grant).where(Grant.org_id == org_id, access.live(now))
        )
    return int(count or 0)


# --- 1. the decision ------------------------------------------------------------------------


def _decide(session: Session, org_id: str, who: Who, asset: Asset) -> tuple[float, float, Sample]:
    """holdings(), asset_scope() + authorize(), and both (wall and CPU), in ms."""
    start, cpu = time.perf_counter(), time.process_time()
    held = access.holdings(session, org_id, who.user_id, who.role, utcnow())
    read = time.perf_counter()
    principal = Principal(
        org_id=org_id, user_id=who.user_id, role=who.role, label=who.label, holdings=held
    )
    authorize(principal, Permission.ASSET_READ, scopes.asset_scope(session, principal, asset))
    end = time.perf_counter()
    total = Sample((end - start) * 1000, (time.process_time() - cpu) * 1000)
    return (read - start) * 1000, (end - read) * 1000, total


def _decision(
    ctx: Context,
    url: str,
    reference_url: str,
    world: World,
    iterations: int,
    rng: random.Random,
) -> list[Result]:
    main, reference = Database.connect(url), Database.connect(reference_url)
    variants = (
        ("admin, org without grants (reference)", reference, world.admin),
        ("admin, 10,000 grants in org", main, world.admin),
        ("technician, 5 grants (subtree)", main, world.tech),
    )
    samples: dict[str, list[tuple[float, float, Sample]]] = {v[0]: [] for v in variants}
    try:
        for round_ in range(iterations + 20):
            asset_id = world.targets[round_ % len(world.targets)]
            for label, database, who in rng.sample(variants, len(variants)):
                with database.unit_of_work(write=False) as session:
                    asset = session.scalar(select(Asset).where(Asset.id == asset_id))
                    if asset is None:
                        raise RuntimeError(f"no asset {asset_id}")
                    taken = _decide(session, world.org_id, who, asset)
                if round_ >= 20:  # the first rounds warm caches up, untimed
                    samples[label].append(taken)
    finally:
        main.dispose()
        reference.dispose()
    ctx.log(f"decision: {iterations} rounds of {len(variants)} variants")
    out: list[Result] = []
    for index, (label, taken) in enumerate(samples.items()):
        total = [t[2].wall for t in taken]
        out += _spread(f"decision: {label}", total, None if index == 0 else TARGET_MS)
        cpu = [t[2].cpu for t in taken]
        for pct in (50, 99):
            out.append(info(NAME, f"decision: {label}: CPU p{pct}", percentile(cpu, pct), "ms"))
    tech = samples[variants[2][0]]
    for part, index in (("access.holdings()", 0), ("asset_scope() + authorize()", 1)):
        values = [t[index] for t in tech]
        for pct in (50, 99):
            figure = f"decision: technician, {part} alone p{pct}"
            out.append(info(NAME, figure, percentile(values, pct), "ms"))
    return out


# --- 2 and 3. through the app ---------------------------------------------------------------


@contextmanager
def _client(ctx: Context, url: str) -> Iterator[TestClient]:
    data_dir = ctx.workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database.connect(url)
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="bench-secret-key",
        embedded_worker=False,
    )
    try:
        yield create_app(settings, database).test_client()
    finally:
        database.dispose()


def _timed_get(client: TestClient, path: str, token: str) -> tuple[Sample, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(path, headers=headers)
    body = response.get_data()
    taken = Sample((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status_code}: {body[:300]!r}")
    return taken, response


def _status(client: TestClient, path: str, token: str) -> int:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    status: int = response.status_code
    return status


def _interleaved(
    variants: Sequence[tuple[str, TestClient, str]],
    path: Callable[[int], str],
    rounds: int,
    rng: random.Random,
    check: Callable[[str, Any], None],
) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {v[0]: [] for v in variants}
    for round_ in range(rounds + 20):
        for label, client, token in rng.sample(list(variants), len(variants)):
            taken, response = _timed_get(client, path(round_), token)
            check(label, response)
            if round_ >= 20:  # warm-up rounds, untimed
                samples[label].append(taken)
    return samples


def _requests(
    ctx: Context,
    url: str,
    reference_url: str,
    world: World,
    requests: int,
    pages: int,
    rng: random.Random,
) -> list[Result]:
    reference_label = "admin, org without grants (reference)"
    with _client(ctx, url) as main, _client(ctx, reference_url) as reference:
        variants = (
            (reference_label, reference, world.admin.token),
            ("admin, 10,000 grants in org", main, world.admin.token),
            ("technician, 5 grants (subtree)", main, world.tech.token),
        )

        def asset_path(round_: int) -> str:
            return f"/api/v1/assets/{world.targets[round_ % len(world.targets)]}"

        def same_asset(_label: str, response: Any) -> None:
            if response.get_json()["id"] not in world.targets:
                raise RuntimeError("GET /assets/<id> answered another asset")

        gets = _interleaved(variants, asset_path, requests, rng, same_asset)
        ctx.log(f"GET asset: {requests} rounds of {len(variants)} variants")

        listings = (
            variants[0],
            variants[2],
            ("technician B, 3 grants (1 subtree)", main, world.tech_b.token),
        )
        answering = [v for v in listings if _status(v[1], LIST_PATH, v[2]) == 200]

        def in_reach(label: str, response: Any) -> None:
            items = response.get_json()["items"]
            if len(items) != 50:
                raise RuntimeError(f"GET {LIST_PATH} ({label}): {len(items)} items")
            if label != reference_label and any(
                item["site_id"] not in world.tech_sites for item in items
            ):
                raise RuntimeError(f"{label}'s page holds an asset outside their areas")

        lists = _interleaved(answering, lambda _r: LIST_PATH, pages, rng, in_reach)
        ctx.log(f"GET {LIST_PATH}: {pages} rounds")
        failing = [
            Result(
                NAME,
                f"GET {LIST_PATH}: {label}: answers HTTP",
                _status(client, LIST_PATH, token),
                "",
                "200",
                False,
            )
            for label, client, token in listings
            if (label, client, token) not in answering
        ]
    out: list[Result] = []
    base = [sample.wall for sample in gets[reference_label]]
    base_cpu = [sample.cpu for sample in gets[reference_label]]
    for label, samples in gets.items():
        out += _spread(f"GET asset: {label}", [sample.wall for sample in samples])
    for label, samples in list(gets.items())[1:]:
        wall = [sample.wall for sample in samples]
        cpu = [sample.cpu for sample in samples]
        out += [
            at_most(
                NAME, f"GET asset: {label}: added p99", _added(wall, base, 99), TARGET_MS, "ms"
            ),
            info(NAME, f"GET asset: {label}: added p50", _added(wall, base, 50), "ms"),
            info(
                NAME,
                f"GET asset: {label}: p99 / reference p99",
                percentile(wall, 99) / percentile(base, 99),
                "ratio",
            ),
            info(NAME, f"GET asset: {label}: added CPU p50", _added(cpu, base_cpu, 50), "ms"),
            info(NAME, f"GET asset: {label}: added CPU p99", _added(cpu, base_cpu, 99), "ms"),
        ]
    for label, samples in gets.items():
        cpu = [sample.cpu for sample in samples]
        for pct in (50, 99):
            figure = f"GET asset: {label}: CPU p{pct}"
            out.append(info(NAME, figure, percentile(cpu, pct), "ms"))
    for label, samples in lists.items():
        out += _spread(f"GET {LIST_PATH}: {label}", [sample.wall for sample in samples])
    return out + failing


def _added(values: Sequence[float], reference: Sequence[float], pct: float) -> float:
    return percentile(values, pct) - percentile(reference, pct)


def _spread(label: str, values: Sequence[float], target_p99: float | None = None) -> list[Result]:
    out = [
        info(NAME, f"{label} p50 (n={len(values)})", percentile(values, 50), "ms"),
        info(NAME, f"{label} p95 (n={len(values)})", percentile(values, 95), "ms"),
    ]
    p99 = percentile(values, 99)
    figure = f"{label} p99 (n={len(values)})"
    if target_p99 is None:
        out.append(info(NAME, figure, p99, "ms"))
    else:
        out.append(at_most(NAME, figure, p99, target_p99, "ms"))
    return out
