"""The authorization matrix's world: one app and database for the whole module, two tenants
with a small fleet, a file, a share, a link and an extra token each, logged-in sessions
for every role, and revoked and expired credentials.

The suite's ``db`` fixture empties every table before each test, so the matrix does not
use it (nor ``app``, ``client``, ``tenant``): it empties the tables once, builds its world
once per module on the session's ``database``, and empties them again when done.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from policy import PASSWORD, PDF, ROLES, Ids, Req
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from outpost.app import create_app
from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import custom_roles, factors, grants, invitations, requests, totp
from outpost.identity import service as identity
from outpost.identity.mfa_views import CHALLENGE_COOKIE
from outpost.identity.models import ApiToken, Grant, User, WebSession
from outpost.identity.principal import Actor
from outpost.identity.roles import NO_ROLE
from outpost.identity.secrets import digest
from outpost.models import metadata
from outpost.settings import Settings
from outpost.web.auth import CSRF_COOKIE, SESSION_COOKIE
from support.tenants import insert_token
from support.web import build_small_fleet

CSRF = "authz-matrix-csrf-token"
SECRET_KEY = "test-secret-key"
#: Every name the other tenant gives its objects holds this marker: no response to the
#: caller's tenant may ever contain it (its org id is checked too).
CANARY = "CANARY"

#: Ids that exist nowhere, shaped like real ones.
MISSING = Ids(
    org="org_00000000000000000000000000",
    site="sit_00000000000000000000000000",
    site_code="NOPE",
    gateway="ast_00000000000000000000000001",
    controller="ast_00000000000000000000000002",
    sensor="ast_00000000000000000000000003",
    sensor_serial="NOPE-SN1",
    file="fil_00000000000000000000000000",
    share="shr_00000000000000000000000000",
    link="lnk_00000000000000000000000000",
    link_token="opl_00000000_" + "A" * 43,
    signed="not-a-signed-token.AAAAAA.BBBBBB",
    token="tok_00000000000000000000000000",
)
MISSING_KINDS = {
    "site": MISSING.site,
    "asset": MISSING.sensor,
    "file": MISSING.file,
    "deleted_file": MISSING.file,
    "share": MISSING.share,
    "link": MISSING.link,
    "token": MISSING.token,
    "grant": "grt_00000000000000000000000000",
    "my_grant": "grt_00000000000000000000000000",
    "request": "req_00000000000000000000000000",
    "my_request": "req_00000000000000000000000000",
    "role": "no-such-role",
    "member": "usr_00000000000000000000000000",
    "invitation": "inv_00000000000000000000000000",
    "invite_secret": "not-an-invitation-" + "A" * 40,
    "credential": "dcr_00000000000000000000000000",
}


@dataclass
class Member:
    role: str
    email: str
    user_id: str
    token: str = ""  # bearer secret
    session: str = ""  # session cookie secret
    recovery_codes: list[str] = field(default_factory=list)  # when MFA is set up


@dataclass(frozen=True)
class Credential:
    """What a request carries: a bearer token, a session cookie, or nothing; and whose."""

    kind: str  # "bearer", "session" or "none"
    secret: str = ""
    member: Member | None = None


NOBODY = Credential("none")


@dataclass
class Tenant:
    name: str
    org_id: str
    members: dict[str, Member]
    ids: Ids | None = None

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer("admin")

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.members[role].token}"}


@dataclass
class World:
    app: Flask
    db: Database
    own: Tenant
    other: Tenant
    strict_org: str = ""  # an organization that requires MFA: login challenges
    #: "revoked" / "expired" credentials of the own tenant's admin, by kind.
    broken: dict[tuple[str, str], Credential] = field(default_factory=dict)
    #: Members of the own tenant whose role is held on site P1 only, by role.
    scoped: dict[str, Member] = field(default_factory=dict)
    #: The own tenant's second site P2 and its objects ("other_site").
    site2: Ids | None = None
    #: Members whose only access was a grant that expired / was revoked, by case.
    ended: dict[str, Member] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def setup(self) -> FlaskClient:
        """A client for building objects; it carries no cookies of its own."""
        return self.app.test_client(use_cookies=False)

    def client(self, credential: Credential) -> FlaskClient:
        """A new client carrying ``credential`` (and the CSRF cookie, which is not one)."""
        client = self.app.test_client()
        client.set_cookie(CSRF_COOKIE, CSRF)
        if credential.kind == "session":
            client.set_cookie(SESSION_COOKIE, credential.secret)
        return client

    def number(self) -> int:
        return next(self.counter)

    def send(self, credential: Credential, req: Req) -> TestResponse:
        """``req`` from a new client with ``credential``; page forms get the CSRF field."""
        client = self.client(credential)
        for name, value in req.cookies.items():
            client.set_cookie(name, value)
        headers = dict(req.headers)
        if credential.kind == "bearer":
            headers["Authorization"] = f"Bearer {credential.secret}"
        kwargs: dict[str, Any] = {"headers": headers, "query_string": req.query}
        if req.json is not None:
            kwargs["json"] = req.json
        elif req.form is not None:
            form = dict(req.form)
            if not req.path.startswith("/api/"):
                form["csrf_token"] = CSRF
            kwargs["data"] = form
        elif req.body is not None:
            kwargs["data"] = req.body
        response = client.open(req.path, method=req.method, **kwargs)
        response.get_data()  # run streamed bodies to the end
        response.close()
        return response

    def context(
        self,
        role: str,
        target: str,
        credential: Credential = NOBODY,
        scope: str = "organization",
    ) -> Context:
        return Context(self, role, target, credential, scope)

    @property
    def anonymous(self) -> Credential:
        return NOBODY

    def member(self, role: str, scope: str = "organization") -> Member:
        return self.own.members[role] if scope == "organization" else self.scoped[role]

    def credential(self, role: str, kind: str, scope: str = "organization") -> Credential:
        """The own tenant's ``role`` member's long-lived ``bearer`` token or ``session``."""
        member = self.member(role, scope)
        secret = member.token if kind == "bearer" else member.session
        return Credential(kind, secret, member)

    def ended_credential(self, case: str, kind: str, *, fresh: bool) -> Credential:
        """A valid credential of a member whose grant ended (``case``); a new member's
        when the route ends their session."""
        member = self.ended_member(case) if fresh else self.ended[case]
        secret = member.token if kind == "bearer" else member.session
        return Credential(kind, secret, member)

    def fresh_session(self, role: str, scope: str = "organization") -> Credential:
        """A new session of the own tenant's ``role`` member, for a route that ends it."""
        member = self.member(role, scope)
        return Credential("session", self.log_in(member.email), member)

    def _password_step(self, email: str, cookie: str) -> str:
        """The real login form; the value of the ``cookie`` it sets."""
        client = self.client(NOBODY)
        response = client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": CSRF}
        )
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        found = client.get_cookie(cookie)
        assert found is not None, (email, cookie, response.headers.get("Location"))
        return found.value

    def log_in(self, email: str) -> str:
        """A new web session through the real login form; returns its cookie's secret."""
        return self._password_step(email, SESSION_COOKIE)

    def new_member(self, org_id: str, role: str) -> Member:
        email = f"fresh-{role}-{self.number()}@matrix.test"
        with self.db.unit_of_work() as session:
            system = identity.system_actor(org_id, "authz matrix")
            user = identity.add_user(session, system, email=email, password=PASSWORD, role=role)
            user_id = user.id
        return Member(role, email, user_id)

    def set_up_mfa(self, member: Member, org_id: str) -> None:
        """Give ``member`` a confirmed authenticator, through the service."""
        with self.db.unit_of_work() as session:
            user = session.get_one(User, member.user_id)
            actor = Actor(identity.principal_for(session, user, org_id))
            secret = factors.begin_enrolment(session, actor, SECRET_KEY).secret
        with self.db.unit_of_work() as session:
            member.recovery_codes = factors.confirm_enrolment(
                session, actor, totp.code_at(secret, utcnow()), SECRET_KEY
            )

    def site_member(self, role: str, *, expires_in: timedelta | None = None) -> Member:
        """A new member of the own tenant with no role of their own and ``role`` held on
        site P1 (a standing grant, or one ending in ``expires_in``), with an API token."""
        member = self.new_member(self.own.org_id, NO_ROLE)
        assert self.own.ids is not None
        with self.db.unit_of_work() as session:
            system = identity.system_actor(self.own.org_id, "authz matrix")
            spec = grants.GrantSpec(
                user_id=member.user_id,
                role=role,
                reason="authz matrix",
                site_id=self.own.ids.site,
                expires_at=None if expires_in is None else utcnow() + expires_in,
            )
            grants.create_grant(session, system, spec)
            member.token = insert_token(session, self.own.org_id, member.user_id)
        member.role = role
        return member

    def ended_member(self, case: str) -> Member:
        """A member whose only access, operator on P1 for an hour, has expired or was
        revoked; their token and session are still valid."""
        member = self.site_member("operator", expires_in=timedelta(hours=1))
        member.session = self.log_in(member.email)
        with self.db.unit_of_work() as session:
            grant = session.scalars(select(Grant).where(Grant.user_id == member.user_id)).one()
            if case == "expired_grant":
                grant.expires_at = utcnow() - timedelta(seconds=1)
            else:
                system = identity.system_actor(self.own.org_id, "authz matrix")
                grants.revoke_grant(session, system, grant.id, "authz matrix")
        return member

    def fresh_user(self, role: str, *, mfa: bool = False, scope: str = "organization") -> Member:
        """A new member of the own tenant with ``role`` (on ``scope``), logged in; with an
        authenticator set up after logging in when ``mfa``."""
        if scope == "organization":
            member = self.new_member(self.own.org_id, role)
        else:
            member = self.site_member(role)
        member.session = self.log_in(member.email)
        if mfa:
            self.set_up_mfa(member, self.own.org_id)
        return member

    def fresh_user_session(
        self, role: str, *, mfa: bool = False, scope: str = "organization"
    ) -> Credential:
        """A session of a new member with ``role``, for a route that ends all of theirs or
        changes their authenticator."""
        member = self.fresh_user(role, mfa=mfa, scope=scope)
        return Credential("session", member.session, member)

    def challenge(self, *, enrolled: bool) -> tuple[Member, str]:
        """A new member of the organization that requires MFA, past the password step:
        their challenge cookie (for the code when ``enrolled``, else for enrolment)."""
        member = self.new_member(self.strict_org, "viewer")
        if enrolled:
            self.set_up_mfa(member, self.strict_org)
        return member, self._password_step(member.email, CHALLENGE_COOKIE)

    def canaries(self) -> list[bytes]:
        return [CANARY.encode(), self.other.org_id.encode()]


# --- building -------------------------------------------------------------------------


def _empty(database: Database) -> None:
    with database.unit_of_work() as session:
        for table in reversed(metadata.sorted_tables):
            session.execute(table.delete())


def _tenant(db: Database, name: str) -> Tenant:
    members: dict[str, Member] = {}
    slug = name.lower().replace(" ", "-")
    with db.unit_of_work() as session:
        org = identity.create_organization(session, name)
        system = identity.system_actor(org.id, "authz matrix")
        for role in ROLES:
            email = f"{role}@{slug}.test"
            user = identity.add_user(session, system, email=email, password=PASSWORD, role=role)
            member = identity.principal_for(session, user, org.id)
            secret = identity.create_token(session, Actor(member), name=f"{role} token").secret
            members[role] = Member(role, email, user.id, secret)
        org_id = org.id
    return Tenant(name, org_id, members)


def created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.get_json()
    return body


def _fleet(world: World, tenant: Tenant, code: str) -> Ids:
    client, headers = world.setup, tenant.admin
    fleet = build_small_fleet(client, headers, code)
    site, gateway, controller, sensor = fleet.site, fleet.gateway, fleet.controller, fleet.sensor
    file_name = "report.pdf" if code != CANARY else f"{CANARY}-report.pdf"
    file = created(
        client.put(
            "/api/v1/files",
            query_string={"name": file_name, "folder": "/", "site_id": site["id"]},
            data=PDF,
            headers=headers,
        )
    )
    share = created(
        client.post(
            f"/api/v1/files/{file['id']}/shares",
            json={
                "grantee_type": "role",
                "grantee_id": "viewer",
                "expires_at": (utcnow() + timedelta(days=30)).isoformat(),
            },
            headers=headers,
        )
    )
    link = created(client.post("/api/v1/links", json={"file_id": file["id"]}, headers=headers))
    link_token = urlsplit(link["url"]).path.rsplit("/", 1)[-1]
    redirect = client.get(f"/l/{link_token}/download")
    assert redirect.status_code == 303, redirect.get_data(as_text=True)[:500]
    signed = urlsplit(redirect.headers["Location"]).path.rsplit("/", 1)[-1]
    token = created(client.post("/api/v1/tokens", json={"name": f"{code} extra"}, headers=headers))
    return Ids(
        org=tenant.org_id,
        site=site["id"],
        site_code=code,
        gateway=gateway["id"],
        controller=controller["id"],
        sensor=sensor["id"],
        sensor_serial=sensor["serial"],
        file=file["id"],
        share=share["id"],
        link=link["id"],
        link_token=link_token,
        signed=signed,
        token=token["id"],
    )


def _broken_credentials(world: World) -> None:
    """Revoked and expired credentials of the own tenant's admin, of both kinds."""
    client, admin = world.setup, world.own.members["admin"]
    headers = world.own.admin
    revoked = created(client.post("/api/v1/tokens", json={"name": "revoked"}, headers=headers))
    gone = client.delete(f"/api/v1/tokens/{revoked['id']}", headers=headers)
    assert gone.status_code == 204
    expired = created(client.post("/api/v1/tokens", json={"name": "expired"}, headers=headers))
    ended_session = world.log_in(admin.email)
    out = world.client(Credential("session", ended_session)).post(
        "/logout", data={"csrf_token": CSRF}
    )
    assert out.status_code == 303
    expired_session = world.log_in(admin.email)
    past = utcnow() - timedelta(minutes=1)
    with world.db.unit_of_work() as session:
        session.execute(
            update(ApiToken).where(ApiToken.id == expired["id"]).values(expires_at=past)
        )
        session.execute(
            update(WebSession)
            .where(WebSession.secret_hash == digest(expired_session))
            .values(expires_at=past)
        )
    world.broken = {
        ("revoked", "bearer"): Credential("bearer", revoked["token"]),
        ("expired", "bearer"): Credential("bearer", expired["token"]),
        ("revoked", "session"): Credential("session", ended_session),
        ("expired", "session"): Credential("session", expired_session),
    }
    for credential in world.broken.values():  # each really is refused, on both faces
        path = "/api/v1/me" if credential.kind == "bearer" else "/account"
        headers = {"Authorization": f"Bearer {credential.secret}"}
        refused = world.client(credential).get(
            path, headers=headers if credential.kind == "bearer" else {}
        )
        assert refused.status_code in (302, 401), (credential, refused.status_code)


@pytest.fixture(scope="module")
def world(
    database: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    _empty(database)
    data_dir: Path = tmp_path_factory.mktemp("authz")
    settings = Settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET_KEY)
    app = create_app(settings, database)
    own = _tenant(database, "Acme Solar")
    other = _tenant(database, f"{CANARY} Corp")
    built = World(app, database, own, other)
    own.ids = _fleet(built, own, "P1")
    other.ids = _fleet(built, other, CANARY)
    built.site2 = _fleet(built, own, "P2")
    for role in ROLES:
        own.members[role].session = built.log_in(own.members[role].email)
        built.scoped[role] = built.site_member(role)
        built.scoped[role].session = built.log_in(built.scoped[role].email)
    for case in ("expired_grant", "revoked_grant"):
        built.ended[case] = built.ended_member(case)
    with database.unit_of_work() as session:
        strict = identity.create_organization(session, "Strict Corp")
        factors.set_mfa_required(session, identity.system_actor(strict.id, "authz matrix"), True)
        built.strict_org = strict.id
    _broken_credentials(built)
    yield built
    _empty(database)


# --- what request factories see ---------------------------------------------------------


class Context:
    """``policy.Ctx`` for one matrix cell: the caller's role, and whose objects to name."""

    def __init__(
        self, world: World, role: str, target: str, credential: Credential, scope: str
    ) -> None:
        self.world = world
        self.role = role
        self.target = target
        self.credential = credential
        self.scope = scope
        self.challenged: Member | None = None
        self.tenant = world.other if target == "other_tenant" else world.own
        ids = {"missing": MISSING, "other_site": world.site2}.get(target, self.tenant.ids)
        assert ids is not None
        self.ids: Ids = ids
        self.login_email = world.own.members["viewer"].email

    def number(self) -> int:
        return self.world.number()

    def unique(self, stem: str) -> str:
        return f"{stem}-{self.number()}"

    def challenge(self, *, enrolled: bool) -> dict[str, str]:
        if self.target == "missing":
            return {CHALLENGE_COOKIE: "not-a-challenge.AAAAAA.BBBBBB"}
        self.challenged, cookie = self.world.challenge(enrolled=enrolled)
        return {CHALLENGE_COOKIE: cookie}

    def _who(self, who: str) -> Member | None:
        member = self.credential.member  # only valid sessions name their member
        if who == "acting" and self.credential.kind == "session" and member is not None:
            return member
        return self.challenged

    def second_factor(self, who: str = "acting") -> str:
        member = self._who(who)
        if member is None or not member.recovery_codes:
            return "000000"  # no such user here: "missing"
        return member.recovery_codes.pop()

    def enrolment_code(self) -> str:
        member = self._who("acting")
        if member is None:
            return "000000"
        with self.world.db.unit_of_work() as session:
            user = session.get_one(User, member.user_id)
            org = self.world.strict_org if member is self.challenged else self.world.own.org_id
            actor = Actor(identity.principal_for(session, user, org))
            secret = factors.begin_enrolment(session, actor, SECRET_KEY).secret
        return totp.code_at(secret, utcnow())

    def etag(self, path: str) -> str:
        response = self.world.setup.get(path, headers=self.tenant.admin)
        if response.status_code == 404 and self.target == "missing":
            return '"1"'
        assert response.status_code == 200, (path, response.status_code)
        return str(response.headers["ETag"])

    def revision(self, path: str) -> str:
        return self.etag(path).strip('"')

    def fresh(self, kind: str) -> str:
        if self.target == "missing":
            return MISSING_KINDS[kind]
        client, headers = self.world.setup, self.tenant.admin
        ids = self.ids
        if kind == "site":
            code = self.unique("F")
            body = {"name": f"Plant {code}", "code": code}
            return str(created(client.post("/api/v1/sites", json=body, headers=headers))["id"])
        if kind == "asset":
            # a role held on a site acts on that site; the others get a site of their own
            site = self.ids.site if self.scope == "site" else self.fresh("site")
            n = self.number()
            body = {
                "site_id": site,
                "type": "gateway",
                "name": self.unique("gateway"),
                "serial": self.unique("GW"),
                "config": {
                    "ip": f"10.{200 + n // 250}.{n % 250}.1",
                    "subnet": f"10.{200 + n // 250}.{n % 250}.0/24",
                    "upload_interval_s": 60,
                    "max_controllers": 1,
                    "max_bus_devices": 1,
                },
            }
            return str(created(client.post("/api/v1/assets", json=body, headers=headers))["id"])
        if kind in ("file", "deleted_file"):
            query = {"name": self.unique("fresh") + ".pdf", "folder": "/fresh"}
            if self.scope == "site":
                query["site_id"] = self.ids.site
            file = created(
                client.put("/api/v1/files", query_string=query, data=PDF, headers=headers)
            )
            if kind == "deleted_file":
                gone = client.delete(
                    f"/api/v1/files/{file['id']}",
                    headers={**headers, "If-Match": f'"{file["revision"]}"'},
                )
                assert gone.status_code == 200, gone.get_data(as_text=True)[:500]
            return str(file["id"])
        if kind == "share":
            body = {
                "grantee_type": "role",
                "grantee_id": "operator",
                "expires_at": (utcnow() + timedelta(days=1)).isoformat(),
            }
            path = f"/api/v1/files/{ids.file}/shares"
            return str(created(client.post(path, json=body, headers=headers))["id"])
        if kind == "link":
            body = {"file_id": ids.file, "expires_in_hours": 1}
            return str(created(client.post("/api/v1/links", json=body, headers=headers))["id"])
        if kind == "credential":
            path = f"/api/v1/assets/{ids.sensor}/credentials"
            return str(created(client.post(path, headers=headers))["id"])
        if kind == "token":
            # one's own token may be revoked by any role: on the own tenant it is the caller's
            owner = self.tenant.members["admin"]
            if self.target == "own" and self.role in ROLES:
                owner = self.world.member(self.role, self.scope)
            body = {"name": self.unique("fresh")}
            bearer = {"Authorization": f"Bearer {owner.token}"}
            return str(created(client.post("/api/v1/tokens", json=body, headers=bearer))["id"])
        return self._fresh_access(kind)

    def caller_id(self) -> str:
        """The calling member's user id (the own viewer's for a cell with no caller)."""
        member = self.credential.member or self.world.own.members["viewer"]
        return member.user_id

    def _fresh_access(self, kind: str) -> str:
        """Grants, requests, roles, members and invitations of the target tenant, made
        through the services by its system actor (or by the member they belong to)."""
        org_id = self.tenant.org_id
        system = identity.system_actor(org_id, "authz matrix")
        with self.world.db.unit_of_work() as session:
            if kind == "role":
                role = custom_roles.create_role(
                    session, system, name=self.unique("role"), permissions=["site.read"]
                )
                return role.name
            if kind in ("invitation", "invite_secret"):  # by the admin: it is checked again
                admin = session.get_one(User, self.tenant.members["admin"].user_id)
                inviter = Actor(identity.principal_for(session, admin, org_id))
                issued = invitations.invite(
                    session,
                    inviter,
                    email=f"{self.unique('guest')}@partner.test",
                    role="viewer",
                    site_id=self.ids.site,
                    duration_minutes=60,
                    reason="authz matrix",
                )
                return issued.invitation.id if kind == "invitation" else issued.secret
        mine = kind in ("my_grant", "my_request") and self.target == "own"
        holder = self.caller_id() if mine else ""
        if not holder:
            holder = self.world.new_member(org_id, NO_ROLE).user_id
        if kind == "member":
            return holder
        with self.world.db.unit_of_work() as session:
            if kind in ("grant", "my_grant"):
                spec = grants.GrantSpec(
                    user_id=holder,
                    role="viewer",
                    reason="authz matrix",
                    site_id=self.ids.site,
                    expires_at=utcnow() + timedelta(hours=1),
                )
                return grants.create_grant(session, system, spec).id
            if kind in ("request", "my_request"):
                user = session.get_one(User, holder)
                asker = Actor(identity.principal_for(session, user, org_id))
                return requests.request_access(
                    session,
                    asker,
                    role="viewer",
                    site_id=self.ids.site,
                    duration_minutes=60,
                    reason="authz matrix",
                ).id
        raise AssertionError(f"no fresh {kind!r}: teach Context.fresh to make one")


# --- reporting ----------------------------------------------------------------------------

_CELLS = pytest.StashKey[list[Any]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_CELLS] = [
        item.callspec.params["cell"]
        for item in items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_route_matrix"
        and hasattr(item, "callspec")
    ]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The matrix size (routes x roles x cases) this run collected, for the record."""
    cells = config.stash.get(_CELLS, [])
    if not cells:
        return
    routes = len({(cell.endpoint, cell.method) for cell in cells})
    roles = sorted({cell.role for cell in cells if cell.role})
    scopes = sorted({cell.scope for cell in cells if cell.role})
    role_cells = [cell for cell in cells if cell.role]
    by_target = Counter(cell.case for cell in role_cells)
    by_credential = Counter(cell.case for cell in cells if not cell.role)
    terminalreporter.write_line(
        f"authz matrix: {routes} routes x {len(roles)} roles x {len(scopes)} scope(s) x "
        f"targets ({', '.join(f'{k} {v}' for k, v in by_target.items())}) = "
        f"{len(role_cells)} role cells; + credential cases "
        f"({', '.join(f'{k} {v}' for k, v in by_credential.items())}) = "
        f"{len(cells) - len(role_cells)}; {len(cells)} cells in all"
    )
