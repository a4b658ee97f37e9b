"""The authorization matrix: every route of the app, generated from its URL map, against
the policy table in ``policy.py`` (Zero Trust, issue 3's "Proof").

For each route (endpoint and method; HEAD and OPTIONS are Flask's), the matrix runs:

- every built-in role (viewer, technician, operator, admin) on every scope
  (``policy.SCOPES``: held on the whole organization, or on site P1 only through a
  standing grant) naming the caller's **own** objects: a role at or above the row's
  minimum gets a 2xx/3xx (the row's request is valid), a role below it a 403 (or the
  row's ``site`` status for a site-scoped role: 403 for organization-wide actions);
- for site-scoped roles, the same with objects on the tenant's **other site** (P2):
  answered like another tenant's (404), and alike to a missing one;
- when the route names an object (path, query or body), the same with **another
  tenant's** objects and with **missing** ids: 404 for every role (the row's
  ``foreign`` status where a route answers otherwise), and the two answers must be the
  same, so that a refusal never tells another tenant's object from nothing;
- the credential cases (``policy.CREDENTIAL_CASES``): **anonymous**, a **revoked**
  token or logged-out session, an **expired** one, and a valid credential of the other
  kind (a session cookie on the API, a bearer token on a page): 401 problem+json on the
  API, a redirect to /login for pages;
- the grant cases (``policy.GRANT_CASES``): the valid token or session of a member
  whose only access, a grant of operator on P1, **expired** or was **revoked**: 403 or
  404 everywhere except their own account (rows marked ``membership``).

Public rows (the allowlist) must answer every one of those callers with a 2xx/3xx
(never 401), and refuse an anonymous request whose capability is missing (a link token:
404; a login challenge: back to /login). API routes authenticate with
``Authorization: Bearer``, pages with the session cookie of a real login (and a CSRF
token on forms). Every response of every cell is searched for the other tenant's
marker and organization id: zero cross-tenant reads. After the matrix,
``test_zero_cross_tenant_writes`` checks the other tenant's audit log holds no event by
any of the caller tenant's members or tokens, and its objects are as they were built.

A route with no row fails ``test_every_route_has_a_policy_row`` naming it; the public
allowlist in ``outpost.web.auth`` must equal the rows marked public. The matrix size
(routes x roles x cases) is printed at the end of the run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from policy import (
    CREDENTIAL_CASES,
    GRANT_CASES,
    KNOWN_DEVIATIONS,
    POLICY,
    PUBLIC,
    ROLES,
    SCOPES,
    TARGETS,
    Req,
    Rule,
    allowed,
)
from sqlalchemy import select
from werkzeug.test import TestResponse

from outpost.app import create_app
from outpost.audit.models import AuditEvent
from outpost.files.models import File, FileLink, FileShare
from outpost.identity.models import ApiToken, Membership
from outpost.inventory.models import Asset, Site
from outpost.settings import Settings
from outpost.web.auth import PUBLIC_ENDPOINTS

#: ``conftest.World`` and ``conftest.Credential``: a test module cannot import its own
#: conftest reliably (every conftest.py is a module named "conftest"), so the fixture's
#: methods are all the matrix uses of them.
World = Any
Credential = Any

PROBLEM = "application/problem+json"
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})


def route_table() -> dict[tuple[str, str], str]:
    """``(endpoint, method) -> URL rule`` of the app as ``create_app`` builds it."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            data_dir=Path(scratch),
            database_url=f"sqlite:///{scratch}/routes.db",
            secret_key="route-table",
        )
        app = create_app(settings)
        try:
            return {
                (rule.endpoint, method): rule.rule
                for rule in app.url_map.iter_rules()
                for method in sorted((rule.methods or set()) - SKIPPED_METHODS)
            }
        finally:
            app.extensions["outpost"].db.dispose()


ROUTES = route_table()


@dataclass(frozen=True)
class Cell:
    endpoint: str
    method: str
    case: str  # a target ("own", "other_tenant", "missing") or a credential case
    role: str | None = None  # None for the credential cases
    scope: str = "organization"

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.method)

    @property
    def id(self) -> str:
        who = f"{self.role}@{self.scope}" if self.role else "-"
        return f"{self.endpoint}:{self.method}:{who}:{self.case}"


def names_object(key: tuple[str, str], rule: Rule) -> bool:
    if rule.names_object is not None:
        return rule.names_object
    return "<" in ROUTES[key]


def cells() -> list[Cell]:
    found: list[Cell] = []
    for key in sorted(set(ROUTES) & set(POLICY)):
        rule = POLICY[key]
        targets = TARGETS if names_object(key, rule) else ("own",)
        if rule.minimum == PUBLIC:
            # what a public route names is a capability (a link token, a login challenge):
            # nobody's, so no other tenant's case; anyone gets the same, so the missing
            # one is asked anonymously
            targets = ("own",)
            if names_object(key, rule):
                found.append(Cell(*key, "missing"))
        for scope in SCOPES:
            # "other_site" is outside a site's reach only: the whole organization covers it
            scoped = [
                t
                for t in targets
                if t != "other_site" or (scope != "organization" and rule.site_bound)
            ]
            for role in ROLES:
                found.extend(Cell(*key, target, role, scope) for target in scoped)
        found.extend(Cell(*key, case) for case in CREDENTIAL_CASES)
        if rule.minimum != PUBLIC:
            found.extend(Cell(*key, case) for case in GRANT_CASES)
    return found


CELLS = cells()


def is_api(key: tuple[str, str]) -> bool:
    return ROUTES[key].startswith("/api/")


# --- sending ------------------------------------------------------------------------------


def described(req: Req, response: TestResponse) -> str:
    body = response.get_data()[:400].decode("utf-8", "replace")
    where = response.headers.get("Location", "")
    return f"{req.method} {req.path} -> {response.status_code} {where} {body!r}"


def assert_no_canary(world: World, req: Req, response: TestResponse) -> None:
    seen = response.get_data() + str(response.headers).encode()
    for canary in world.canaries():
        assert canary not in seen, f"another tenant's data leaked: {described(req, response)}"


def assert_success(rule: Rule, req: Req, response: TestResponse) -> None:
    assert 200 <= response.status_code < 400, f"expected 2xx/3xx: {described(req, response)}"
    if 300 <= response.status_code < 400 and not rule.lands_on_login:
        where = response.headers.get("Location", "")
        assert not where.startswith("/login"), f"sent to log in: {described(req, response)}"


def assert_unauthenticated(key: tuple[str, str], req: Req, response: TestResponse) -> None:
    if is_api(key):
        assert response.status_code == 401, f"expected 401: {described(req, response)}"
        assert response.mimetype == PROBLEM, described(req, response)
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    else:
        assert response.status_code == 302, f"expected 302 to /login: {described(req, response)}"
        assert response.headers["Location"].startswith("/login"), described(req, response)


def assert_refused(key: tuple[str, str], status: int, req: Req, response: TestResponse) -> None:
    assert response.status_code == status, f"expected {status}: {described(req, response)}"
    if is_api(key):
        assert response.mimetype == PROBLEM, described(req, response)
    if status in (302, 303):
        assert response.headers["Location"].startswith("/login"), described(req, response)


def caller(world: World, cell: Cell, rule: Rule) -> Credential:
    """The role's credential of the route's kind; a fresh one where the route ends it."""
    assert cell.role is not None
    kind = "bearer" if is_api(cell.key) else "session"
    if rule.caller == "shared" or kind == "bearer":
        return world.credential(cell.role, kind, cell.scope)
    if rule.caller == "fresh_session":
        return world.fresh_session(cell.role, cell.scope)
    assert rule.caller in ("fresh_user", "fresh_mfa_user"), rule.caller
    return world.fresh_user_session(
        cell.role, mfa=rule.caller == "fresh_mfa_user", scope=cell.scope
    )


def broken(world: World, cell: Cell) -> Credential:
    kind = "bearer" if is_api(cell.key) else "session"
    if cell.case == "anonymous":
        return world.anonymous
    if cell.case == "cross_kind":
        return world.credential("admin", "session" if kind == "bearer" else "bearer")
    return world.broken[(cell.case, kind)]


# --- the matrix ---------------------------------------------------------------------------


def check(world: World, cell: Cell) -> None:
    rule = POLICY[cell.key]
    if cell.role is None and cell.case == "missing":  # a public route's missing capability
        req = rule.build(world.context("admin", "missing"))
        response = world.send(world.anonymous, req)
        assert_no_canary(world, req, response)
        assert_refused(cell.key, rule.foreign, req, response)
        return
    if cell.role is None and cell.case in GRANT_CASES:  # authenticated, holding nothing
        credential = world.ended_credential(
            cell.case, "bearer" if is_api(cell.key) else "session", fresh=rule.caller != "shared"
        )
        req = rule.build(world.context("viewer", "own"))
        response = world.send(credential, req)
        assert_no_canary(world, req, response)
        if rule.membership:  # still a member: authenticated, whatever the answer
            assert response.status_code < 500, described(req, response)
            assert not (is_api(cell.key) and response.status_code == 401), described(req, response)
            if not rule.lands_on_login:
                where = response.headers.get("Location", "")
                assert not where.startswith("/login"), described(req, response)
        else:  # nothing held: refused, or out of sight like a missing object
            refusals = (403, 404, rule.foreign)
            assert response.status_code in refusals, (
                f"expected {refusals}: {described(req, response)}"
            )
        return
    if cell.role is None:  # a credential case, with a request the admin could make
        credential = broken(world, cell)
        req = rule.build(world.context("admin", "own", credential))
        response = world.send(credential, req)
        assert_no_canary(world, req, response)
        if rule.minimum == PUBLIC:
            assert_success(rule, req, response)
        else:
            assert_unauthenticated(cell.key, req, response)
        return
    credential = caller(world, cell, rule)
    req = rule.build(world.context(cell.role, cell.case, credential, cell.scope))
    response = world.send(credential, req)
    assert_no_canary(world, req, response)
    if cell.case == "own" or (cell.case == "other_site" and rule.any_site):
        if cell.scope == "site" and rule.site is not None:
            assert_refused(cell.key, rule.site, req, response)
        elif allowed(cell.role, rule.minimum):
            assert_success(rule, req, response)
        else:
            assert_refused(cell.key, rule.below, req, response)
        return
    if cell.case in ("other_tenant", "other_site"):
        # the refusal must not tell an object out of reach from a missing one
        other_caller = caller(world, cell, rule)
        missing = rule.build(world.context(cell.role, "missing", other_caller, cell.scope))
        alike = world.send(other_caller, missing)
        assert response.status_code == alike.status_code, (
            f"an object out of reach is told from a missing one: {described(req, response)}"
            f" but {described(missing, alike)}"
        )
        assert not 200 <= response.status_code < 400, described(req, response)
    assert_refused(cell.key, rule.foreign, req, response)


@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_route_matrix(world: World, cell: Cell) -> None:
    known = KNOWN_DEVIATIONS.get((cell.endpoint, cell.method, cell.role or "-", cell.case))
    if known is None:
        check(world, cell)
        return
    try:
        check(world, cell)
    except AssertionError as exc:
        pytest.xfail(f"{known}; {str(exc).splitlines()[0][:160]}")
    pytest.fail(f"{cell.id} now conforms: remove it from policy.KNOWN_DEVIATIONS")


def test_zero_cross_tenant_writes(world: World) -> None:
    """Runs after the matrix: nothing the caller's tenant sent changed the other tenant."""
    own, theirs = world.own.org_id, world.other.ids
    with world.db.unit_of_work(write=False) as session:
        members = select(Membership.user_id).where(Membership.org_id == own)
        tokens = select(ApiToken.id).where(ApiToken.org_id == own)
        crossed = session.execute(
            select(AuditEvent.action, AuditEvent.object_id).where(
                AuditEvent.org_id == theirs.org,
                AuditEvent.actor_id.in_(members.union(tokens).scalar_subquery()),
            )
        ).all()
        assert not crossed, f"the other tenant's log has events by this tenant: {crossed}"
        assert session.get_one(Site, theirs.site).revision == 1
        assets = session.scalars(select(Asset.revision).where(Asset.site_id == theirs.site))
        assert set(assets) == {1}
        file = session.get_one(File, theirs.file)
        assert (file.revision, file.deleted_at) == (1, None)
        assert session.get_one(FileShare, theirs.share).revoked_at is None
        assert session.get_one(FileLink, theirs.link).revoked_at is None
        assert session.get_one(ApiToken, theirs.token).revoked_at is None


def test_every_route_has_a_policy_row() -> None:
    missing = sorted(set(ROUTES) - set(POLICY))
    stale = sorted(set(POLICY) - set(ROUTES))
    lines = [
        f"  {endpoint} {method} ({ROUTES[(endpoint, method)]})" for endpoint, method in missing
    ]
    assert not missing, (
        "routes without a policy row; add a row to tests/authz/policy.py for each:\n"
        + "\n".join(lines)
    )
    assert not stale, f"policy rows for routes that no longer exist: {stale}"


def test_public_allowlist_matches_the_public_rows() -> None:
    public_rows = {endpoint for (endpoint, _), rule in POLICY.items() if rule.minimum == PUBLIC}
    assert set(PUBLIC_ENDPOINTS) == public_rows, (
        f"only in outpost.web.auth.PUBLIC_ENDPOINTS: {sorted(set(PUBLIC_ENDPOINTS) - public_rows)}"
        f"; only public in the policy: {sorted(public_rows - set(PUBLIC_ENDPOINTS))}"
    )
    not_public = {endpoint for (endpoint, _), rule in POLICY.items() if rule.minimum != PUBLIC}
    both = not_public & public_rows
    assert not both, f"endpoints both public and not, by method: {sorted(both)}"


def test_known_deviations_name_real_cells() -> None:
    real = {(c.endpoint, c.method, c.role or "-", c.case) for c in CELLS}
    assert set(KNOWN_DEVIATIONS) <= real, sorted(set(KNOWN_DEVIATIONS) - real)
