"""The authorization policy the route matrix checks the app against: one row per route.

A row is keyed by ``(endpoint, method)`` as Flask names them (``app.url_map``) and says
who may call the route, from ``PUBLIC`` (anyone, no credential: it must be in
``outpost.web.auth.PUBLIC_ENDPOINTS``) up to ``ADMIN``. The built-in roles are ordered
``viewer < technician < operator < admin`` (each holds all of the one before it:
``outpost.identity.roles``); a role at or above a row's minimum is allowed, a role below
it is refused. Each role is tried held on the whole organization and held on one site
(``site``: what differs for a site-scoped role), and ``membership`` marks the routes a
member with no access at all still uses (their own account).

Each row also holds a request factory: ``build(ctx)`` returns a *valid* request for the
route, naming the objects in ``ctx.ids`` (the caller's own, another tenant's, or ids that
do not exist: the matrix picks), with the current ``If-Match``/revision, a body that
passes validation and unique names. Valid, so that "allowed" is never confused with a
validation error: the caller's own objects with an allowed role must give a 2xx/3xx.
Routes that destroy or consume what they name take a fresh object per call
(``ctx.fresh(kind)``, made by the target tenant's admin through the API).

Adding a route to the app without adding its row here fails the matrix, naming it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from outpost.clock import isoformat, utcnow
from support.files import PDF
from support.web import PASSWORD

PUBLIC = "public"
VIEWER = "viewer"
TECHNICIAN = "technician"
OPERATOR = "operator"
ADMIN = "admin"

#: The built-in roles, weakest first (each holds every permission of the one before it);
#: a role is allowed on a row whose minimum it reaches.
ROLES: tuple[str, ...] = (VIEWER, TECHNICIAN, OPERATOR, ADMIN)

#: Where a role is held: on the whole organization (a membership's role), or on one site
#: (a standing grant on the own tenant's site P1 to a member whose own role is "none").
SCOPES: tuple[str, ...] = ("organization", "site")

#: Whose objects a request names: the caller's own (on site P1), those on another site of
#: the same tenant (P2: outside a site-scoped caller's reach, so answered like another
#: tenant's: 404; tried for site-scoped callers only), another tenant's, or ids that exist
#: nowhere.
TARGETS: tuple[str, ...] = ("own", "other_site", "other_tenant", "missing")

#: Requests that must be refused as unauthenticated whatever the route (401 on the API,
#: a redirect to /login for pages): no credential, a revoked one (a revoked token, a
#: logged-out session), an expired one, and a valid credential of the other kind (a
#: session cookie on the API, which has no CSRF check; a bearer token on a page).
CREDENTIAL_CASES: tuple[str, ...] = ("anonymous", "revoked", "expired", "cross_kind")

#: Valid credentials of members whose only access was a grant (operator on site P1) that
#: has expired, or was revoked: they are still members, so they are authenticated, but
#: every route that needs a permission refuses them (403, or 404 for an object they can
#: no longer see); only the rows marked ``membership`` (their own account) answer them.
GRANT_CASES: tuple[str, ...] = ("expired_grant", "revoked_grant")

NEW_PASSWORD = "a brand new passphrase"
SENSOR_CONFIG: dict[str, Any] = {
    "channel": 1,
    "kind": "temperature",
    "unit": "degC",
    "sampling_interval_s": 30,
}


def allowed(role: str, minimum: str) -> bool:
    return minimum == PUBLIC or ROLES.index(role) >= ROLES.index(minimum)


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One HTTP request. ``form`` is sent as a form (multipart if it holds a file); page
    forms get the CSRF field added by the matrix."""

    method: str
    path: str
    json: Any = None
    form: dict[str, Any] | None = None
    body: bytes | None = None
    query: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ids:
    """The objects of one tenant a request may name (or, for "missing", ids of nothing)."""

    org: str
    site: str
    site_code: str
    gateway: str
    controller: str
    sensor: str
    sensor_serial: str
    file: str
    share: str
    link: str
    link_token: str  # the secret in /l/<token>
    signed: str  # the signed token in /dl/<token>
    token: str  # an API token's id


class Ctx(Protocol):
    """What a request factory may use (implemented in ``conftest.py``)."""

    role: str  # the caller's role
    target: str  # one of TARGETS
    ids: Ids  # the objects of the target
    login_email: str  # a member of the caller's organization, password PASSWORD

    def etag(self, path: str) -> str:
        """The current ETag of the API resource at ``path`` (``"1"`` if it is missing)."""
        ...

    def revision(self, path: str) -> str:
        """The same, as a page form's ``revision`` field."""
        ...

    def fresh(self, kind: str) -> str:
        """A new object of the target tenant, for one destructive call: ``site``,
        ``asset``, ``file``, ``deleted_file``, ``share``, ``link``, or ``token`` (owned by
        the caller when the target is their own tenant). A made-up id when "missing"."""
        ...

    def number(self) -> int:
        """A counter: never the same number twice in a run."""
        ...

    def unique(self, stem: str) -> str:
        """``stem`` and ``number()``: names and codes that never collide."""
        ...

    def challenge(self, *, enrolled: bool) -> dict[str, str]:
        """The cookies of a login halfway through: a new member of an organization that
        requires MFA typed the right password, and must now type a code (``enrolled``)
        or set up an authenticator. For "missing": a challenge cookie that is not valid."""
        ...

    def second_factor(self, who: str = "acting") -> str:
        """A valid second factor (a recovery code) of the user the request acts as
        (``"acting"``: the caller's session, else the challenge's) or of the challenge's
        user (``"challenge"``), whose authenticator is set up."""
        ...

    def enrolment_code(self) -> str:
        """Start setting up an authenticator for the acting user; the code it shows."""
        ...


Build = Callable[[Ctx], Req]


@dataclass(frozen=True)
class Rule:
    minimum: str
    build: Build
    #: Whether the request names an object (path, query or body), so that the other
    #: tenant's and missing ids are tried. Default: the route has path parameters.
    names_object: bool | None = None
    #: "shared": the role's long-lived credential; "fresh_session": a new session of the
    #: same user (the route ends it); "fresh_user": a new member with the role (the route
    #: ends all of the user's sessions and tokens, or sets up their authenticator);
    #: "fresh_mfa_user": a new member with the role and an authenticator.
    caller: str = "shared"
    #: The route's success is a redirect to /login (logging out); any other redirect there
    #: means "not authenticated".
    lands_on_login: bool = False
    #: The status for another tenant's (and a missing) object, when not 404; for a public
    #: row, the status without a valid capability (link token, login challenge), asked
    #: anonymously. A redirect (302/303) must lead to /login.
    foreign: int = 404
    #: The status for a role held on one site, on that site's own objects, when it differs
    #: from the same role held on the whole organization: 403 for what only an
    #: organization-wide role does (the audit log, creating sites, members), 404 where the
    #: row's object is necessarily outside the site (a fresh site to delete).
    site: int | None = None
    #: The status for a role below the minimum on its own objects, when not 403: 404 for
    #: objects only those who may act on them can see (someone else's grant or request).
    below: int = 403
    #: Whether what the row names sits on a site; objects of the whole organization (roles,
    #: members) have no "other site" to try.
    site_bound: bool = True
    #: The route is meant for sites out of the caller's reach (asking for access to one):
    #: the "other site" target succeeds like the caller's own.
    any_site: bool = False
    #: The route needs no permission, only membership (one's own account and tokens):
    #: a member whose grant ended still uses it.
    membership: bool = False
    note: str = ""


def api(method: str, path: str, **kwargs: Any) -> Req:
    return Req(method, path, **kwargs)


def page(method: str, path: str, form: dict[str, Any] | None = None, **kwargs: Any) -> Req:
    if form is None and method != "GET":
        form = {}
    return Req(method, path, form=form, **kwargs)


def _if_match(c: Ctx, path: str) -> dict[str, str]:
    return {"If-Match": c.etag(path)}


def _share_until(days: int = 30) -> str:
    return isoformat(utcnow() + timedelta(days=days))


def _share_until_form(days: int = 30) -> str:
    return (utcnow() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def _subnet(c: Ctx) -> tuple[str, str]:
    n = c.number()
    a, b = 100 + n // 200, n % 200
    return f"10.{a}.{b}.1", f"10.{a}.{b}.0/24"


def _site_body(c: Ctx, code: str | None = None) -> dict[str, Any]:
    return {
        "name": c.unique("Plant"),
        "code": code or c.unique("S"),
        "timezone": "Europe/Paris",
        "grid_connection_kw": 500,
    }


def _gateway_body(c: Ctx, site_id: str) -> dict[str, Any]:
    ip, subnet = _subnet(c)
    return {
        "site_id": site_id,
        "type": "gateway",
        "name": c.unique("gateway"),
        "serial": c.unique("GW"),
        "config": {
            "ip": ip,
            "subnet": subnet,
            "upload_interval_s": 60,
            "max_controllers": 2,
            "max_bus_devices": 4,
        },
    }


def _sensor_replace(c: Ctx) -> dict[str, Any]:
    return {
        "site_id": c.ids.site,
        "parent_id": c.ids.controller,
        "name": c.unique("sensor"),
        "serial": c.ids.sensor_serial,
        "config": dict(SENSOR_CONFIG),
        "tags": ["matrix"],
    }


def _sensor_form(c: Ctx) -> dict[str, Any]:
    return {
        "revision": c.revision(f"/api/v1/assets/{c.ids.sensor}"),
        "name": c.unique("sensor"),
        "serial": c.ids.sensor_serial,
        "tags": "matrix",
        **{f"config.{key}": str(value) for key, value in SENSOR_CONFIG.items()},
    }


def _site_form(c: Ctx) -> dict[str, Any]:
    return {
        "revision": c.revision(f"/api/v1/sites/{c.ids.site}"),
        "name": c.unique("Plant"),
        "timezone": "Europe/Paris",
        "grid_connection_kw": "500",
        "address": "1 Sun Road",
    }


def _changeset(c: Ctx) -> dict[str, Any]:
    """Renames the target's sensor: needs asset.write, names an object in the body."""
    return {"operations": [{"op": "update", "id": c.ids.sensor, "patch": {"name": c.unique("s")}}]}


def _upload_query(c: Ctx) -> dict[str, str]:
    return {"name": c.unique("upload") + ".pdf", "site_id": c.ids.site, "folder": "/matrix"}


def _multipart(c: Ctx) -> dict[str, Any]:
    return {
        "file": (io.BytesIO(PDF), c.unique("upload") + ".pdf"),
        "site_id": c.ids.site,
        "folder": "/matrix",
    }


def _delete_site(c: Ctx) -> Req:
    site = c.fresh("site")
    return api("DELETE", f"/api/v1/sites/{site}", headers=_if_match(c, f"/api/v1/sites/{site}"))


def _delete_asset(c: Ctx) -> Req:
    asset = c.fresh("asset")
    path = f"/api/v1/assets/{asset}"
    return api("DELETE", path, headers=_if_match(c, path))


def _delete_asset_page(c: Ctx) -> Req:
    asset = c.fresh("asset")
    form = {"revision": c.revision(f"/api/v1/assets/{asset}")}
    return page("POST", f"/assets/{asset}/delete", form)


def _delete_file(c: Ctx) -> Req:
    file = c.fresh("file")
    path = f"/api/v1/files/{file}"
    return api("DELETE", path, headers=_if_match(c, path))


def _restore_file(c: Ctx) -> Req:
    file = c.fresh("deleted_file")
    return api(
        "POST", f"/api/v1/files/{file}/restore", headers=_if_match(c, f"/api/v1/files/{file}")
    )


def _delete_file_page(c: Ctx) -> Req:
    file = c.fresh("file")
    form = {"revision": c.revision(f"/api/v1/files/{file}")}
    return page("POST", f"/files/{file}/delete", form)


def _restore_file_page(c: Ctx) -> Req:
    file = c.fresh("deleted_file")
    form = {"revision": c.revision(f"/api/v1/files/{file}")}
    return page("POST", f"/files/{file}/restore", form)


def _second_login_step(c: Ctx) -> Req:
    cookies = c.challenge(enrolled=True)  # first: the code is the challenged user's
    return page("POST", "/login/mfa", {"code": c.second_factor("challenge")}, cookies=cookies)


def _confirm_setup(c: Ctx) -> Req:
    cookies = c.challenge(enrolled=False)
    return page("POST", "/account/mfa/setup/confirm", {"code": c.enrolment_code()}, cookies=cookies)


def _share_body(**extra: Any) -> dict[str, Any]:
    return {
        "grantee_type": "role",
        "grantee_id": "viewer",
        "access": "read",
        "expires_at": _share_until(),
        **extra,
    }


def _grant_body(c: Ctx) -> dict[str, Any]:
    return {
        "user_id": c.fresh("member"),
        "role": "viewer",
        "site_id": c.ids.site,
        "expires_at": isoformat(utcnow() + timedelta(hours=2)),
        "reason": "authz matrix",
    }


def _request_body(c: Ctx) -> dict[str, Any]:
    return {
        "role": "viewer",
        "site_id": c.ids.site,
        "duration_minutes": 60,
        "reason": "authz matrix",
    }


def _invitation_fields(c: Ctx) -> dict[str, Any]:
    return {
        "email": f"{c.unique('guest')}@partner.test",
        "role": "viewer",
        "site_id": c.ids.site,
        "duration_minutes": 60,
        "reason": "authz matrix",
    }


def _role_form(c: Ctx, action: str) -> Req:
    name = c.fresh("role")
    form = {
        "revision": c.revision(f"/api/v1/roles/{name}"),
        "description": "matrix",
        "permissions": ["site.read"],
    }
    return page("POST", f"/members/roles/{name}{action}", form)


def _role_write(c: Ctx, method: str, **kwargs: Any) -> Req:
    path = f"/api/v1/roles/{c.fresh('role')}"
    return api(method, path, headers=_if_match(c, path), **kwargs)


# --- the table --------------------------------------------------------------------------

FOREIGN_CHANGESET = (
    "A change set names objects in its body and is validated as a whole: another "
    "tenant's asset is reported like a missing one, as a rule violation (422), not a 404."
)

POLICY: dict[tuple[str, str], Rule] = {
    # --- public: the allowlist -----------------------------------------------------------
    ("static", "GET"): Rule(
        PUBLIC, lambda c: page("GET", "/static/outpost.css"), names_object=False
    ),
    ("web.health", "GET"): Rule(PUBLIC, lambda c: page("GET", "/health")),
    ("web.api_docs", "GET"): Rule(PUBLIC, lambda c: page("GET", "/api/docs")),
    ("api_meta.openapi", "GET"): Rule(PUBLIC, lambda c: api("GET", "/api/v1/openapi.json")),
    ("web.login", "GET"): Rule(PUBLIC, lambda c: page("GET", "/login")),
    ("web.login", "POST"): Rule(
        PUBLIC,
        lambda c: page("POST", "/login", {"email": c.login_email, "password": PASSWORD}),
    ),
    ("files_public.link", "GET"): Rule(
        PUBLIC, lambda c: page("GET", f"/l/{c.ids.link_token}"), names_object=True
    ),
    ("files_public.use_link", "POST"): Rule(
        PUBLIC, lambda c: page("POST", f"/l/{c.ids.link_token}"), names_object=True
    ),
    ("files_public.link_download", "GET"): Rule(
        PUBLIC, lambda c: page("GET", f"/l/{c.ids.link_token}/download"), names_object=True
    ),
    ("files_public.signed", "GET"): Rule(
        PUBLIC, lambda c: page("GET", f"/dl/{c.ids.signed}"), names_object=True
    ),
    # --- identity ------------------------------------------------------------------------
    ("web.logout", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/logout"),
        caller="fresh_session",
        lands_on_login=True,
        membership=True,
    ),
    ("identity_api.me", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/me"), membership=True),
    ("identity_api.list_tokens", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/tokens"), membership=True
    ),
    ("identity_api.create_token", "POST"): Rule(
        VIEWER,
        lambda c: api(
            "POST", "/api/v1/tokens", json={"name": c.unique("token"), "expires_in_days": 1}
        ),
    ),
    ("identity_api.revoke_token", "DELETE"): Rule(
        VIEWER,
        lambda c: api("DELETE", f"/api/v1/tokens/{c.fresh('token')}"),
        note="Anyone may revoke their own tokens; another member's is a 404 unless admin.",
    ),
    ("identity.tokens", "GET"): Rule(VIEWER, lambda c: page("GET", "/tokens"), membership=True),
    ("identity.create_token", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/tokens", {"name": c.unique("token"), "expires_in_days": "1"}),
    ),
    ("identity.revoke_token", "POST"): Rule(
        VIEWER, lambda c: page("POST", f"/tokens/{c.fresh('token')}/revoke")
    ),
    ("identity.account_page", "GET"): Rule(
        VIEWER, lambda c: page("GET", "/account"), membership=True
    ),
    ("identity.change_password", "POST"): Rule(
        VIEWER,
        lambda c: page(
            "POST",
            "/account/password",
            {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        caller="fresh_user",
        membership=True,
    ),
    ("identity.log_out_everywhere", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/logout-everywhere"),
        caller="fresh_user",
        lands_on_login=True,
        membership=True,
    ),
    # --- MFA: the second login step and forced enrolment (public: a challenge cookie) --
    ("mfa.login_step", "GET"): Rule(
        PUBLIC,
        lambda c: page("GET", "/login/mfa", cookies=c.challenge(enrolled=True)),
        names_object=True,
        foreign=303,
    ),
    ("mfa.login_step", "POST"): Rule(
        PUBLIC,
        _second_login_step,
        names_object=True,
        foreign=303,
    ),
    ("mfa.setup", "GET"): Rule(
        PUBLIC,
        lambda c: page("GET", "/account/mfa/setup", cookies=c.challenge(enrolled=False)),
        names_object=True,
        foreign=302,
    ),
    ("mfa.begin_setup", "POST"): Rule(
        PUBLIC,
        lambda c: page("POST", "/account/mfa/setup", cookies=c.challenge(enrolled=False)),
        names_object=True,
        caller="fresh_user",
        foreign=302,
    ),
    ("mfa.confirm_setup", "POST"): Rule(
        PUBLIC,
        _confirm_setup,
        names_object=True,
        caller="fresh_user",
        foreign=302,
    ),
    # --- MFA: your authenticator, the organization's requirement, fresh confirmation ----
    ("mfa.status_page", "GET"): Rule(
        VIEWER, lambda c: page("GET", "/account/mfa"), membership=True
    ),
    ("mfa.confirm", "GET"): Rule(
        VIEWER,
        lambda c: page("GET", "/account/mfa/confirm", query={"next": "/tokens"}),
        membership=True,
    ),
    ("mfa.confirm", "POST"): Rule(
        VIEWER,
        lambda c: page(
            "POST",
            "/account/mfa/confirm",
            {"code": c.second_factor()},
            query={"next": "/tokens"},
        ),
        caller="fresh_mfa_user",
        membership=True,
    ),
    ("mfa.regenerate", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/mfa/recovery-codes", {"code": c.second_factor()}),
        caller="fresh_mfa_user",
        membership=True,
    ),
    ("mfa.disable", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/mfa/disable", {"code": c.second_factor()}),
        caller="fresh_mfa_user",
        membership=True,
    ),
    ("mfa.policy", "POST"): Rule(
        ADMIN,
        lambda c: page("POST", "/account/mfa/policy", {"required": "0"}),
        note="Sends the current value (not required), so that an allowed call changes "
        "nothing: requiring MFA would send every member of the matrix's tenant to enrolment.",
        site=403,
    ),
    # --- inventory API -------------------------------------------------------------------
    ("inventory_api.list_sites", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/sites")),
    ("inventory_api.create_site", "POST"): Rule(
        OPERATOR, lambda c: api("POST", "/api/v1/sites", json=_site_body(c)), site=403
    ),
    ("inventory_api.get_site", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/sites/{c.ids.site}")
    ),
    ("inventory_api.patch_site", "PATCH"): Rule(
        OPERATOR,
        lambda c: api(
            "PATCH",
            f"/api/v1/sites/{c.ids.site}",
            json={"name": c.unique("Plant")},
            headers=_if_match(c, f"/api/v1/sites/{c.ids.site}"),
        ),
    ),
    ("inventory_api.put_site", "PUT"): Rule(
        OPERATOR,
        lambda c: api(
            "PUT",
            f"/api/v1/sites/{c.ids.site}",
            json=_site_body(c, code=c.ids.site_code),
            headers=_if_match(c, f"/api/v1/sites/{c.ids.site}"),
        ),
    ),
    ("inventory_api.delete_site", "DELETE"): Rule(OPERATOR, _delete_site, site=404),
    ("inventory_api.list_asset_types", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/asset-types")
    ),
    ("inventory_api.list_assets", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/assets")),
    ("inventory_api.create_asset", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/assets", json=_gateway_body(c, c.ids.site)),
        names_object=True,
    ),
    ("inventory_api.get_asset", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/assets/{c.ids.sensor}")
    ),
    ("inventory_api.patch_asset", "PATCH"): Rule(
        OPERATOR,
        lambda c: api(
            "PATCH",
            f"/api/v1/assets/{c.ids.sensor}",
            json={"name": c.unique("sensor")},
            headers=_if_match(c, f"/api/v1/assets/{c.ids.sensor}"),
        ),
    ),
    ("inventory_api.put_asset", "PUT"): Rule(
        OPERATOR,
        lambda c: api(
            "PUT",
            f"/api/v1/assets/{c.ids.sensor}",
            json=_sensor_replace(c),
            headers=_if_match(c, f"/api/v1/assets/{c.ids.sensor}"),
        ),
    ),
    ("inventory_api.delete_asset", "DELETE"): Rule(OPERATOR, _delete_asset),
    ("inventory_api.post_changeset", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/changesets", json=_changeset(c)),
        names_object=True,
        foreign=422,
        note=FOREIGN_CHANGESET,
    ),
    # --- inventory pages -----------------------------------------------------------------
    ("inventory.fleet", "GET"): Rule(
        VIEWER,
        lambda c: page("GET", "/"),
        membership=True,
        note="A member who holds nothing is sent to /access to ask for some.",
    ),
    ("inventory.site", "GET"): Rule(VIEWER, lambda c: page("GET", f"/sites/{c.ids.site}")),
    ("inventory.update_site", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/sites/{c.ids.site}", _site_form(c))
    ),
    ("inventory.asset", "GET"): Rule(VIEWER, lambda c: page("GET", f"/assets/{c.ids.sensor}")),
    ("inventory.update_asset", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/assets/{c.ids.sensor}", _sensor_form(c))
    ),
    ("inventory.delete_asset", "POST"): Rule(OPERATOR, _delete_asset_page),
    ("inventory.changeset", "GET"): Rule(
        VIEWER, lambda c: page("GET", "/changesets/new"), membership=True
    ),
    ("inventory.run_changeset", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST",
            "/changesets/new",
            {"changeset": json.dumps(_changeset(c)), "action": "apply", "reason": "matrix"},
        ),
        names_object=True,
        foreign=422,
        note=FOREIGN_CHANGESET,
    ),
    # --- audit ---------------------------------------------------------------------------
    ("audit_api.list_audit", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/audit"), site=403),
    ("audit_api.export_audit", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/audit/export", query={"format": "csv"}), site=403
    ),
    ("audit.events", "GET"): Rule(VIEWER, lambda c: page("GET", "/audit"), site=403),
    ("audit.export_events", "GET"): Rule(VIEWER, lambda c: page("GET", "/audit/export"), site=403),
    # --- files API -----------------------------------------------------------------------
    ("files_api.list_files", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/files", query={"site_id": c.ids.site}),
        names_object=True,
    ),
    ("connectivity.issue_credential", "POST"): Rule(
        OPERATOR, lambda c: api("POST", f"/api/v1/assets/{c.ids.sensor}/credentials")
    ),
    ("connectivity.list_credentials", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/assets/{c.ids.sensor}/credentials")
    ),
    ("connectivity.revoke_credential", "DELETE"): Rule(
        OPERATOR,
        lambda c: api(
            "DELETE", f"/api/v1/assets/{c.ids.sensor}/credentials/{c.fresh('credential')}"
        ),
    ),
    ("connectivity_pages.credentials_page", "GET"): Rule(
        VIEWER, lambda c: page("GET", f"/assets/{c.ids.sensor}/credentials")
    ),
    ("connectivity_pages.issue_credential", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/assets/{c.ids.sensor}/credentials")
    ),
    ("connectivity_pages.revoke_credential", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST", f"/assets/{c.ids.sensor}/credentials/{c.fresh('credential')}/revoke"
        ),
    ),
    ("telemetry_ingest.get_retention", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/telemetry/retention"), site_bound=False
    ),
    ("telemetry_ingest.set_retention", "PUT"): Rule(
        ADMIN,
        lambda c: api(
            "PUT", "/api/v1/telemetry/retention", json={"raw_days": 30, "rollup_days": 730}
        ),
        site=403,
        site_bound=False,
        note="an organization setting: member.manage held on the whole organization",
    ),
    ("telemetry_ingest.write_json", "POST"): Rule(
        TECHNICIAN,
        lambda c: api(
            "POST",
            "/api/v1/telemetry",
            json={"points": [{"asset": c.ids.sensor, "values": {"value": 21.5}}]},
        ),
        names_object=True,
        foreign=422,
        note="an asset out of sight is unknown (422 telemetry.unknown_asset), like a missing one",
    ),
    ("telemetry_ingest.write_line_protocol", "POST"): Rule(
        TECHNICIAN,
        lambda c: api("POST", "/api/v1/write", body=f"m,asset={c.ids.sensor} value=21.5".encode()),
        names_object=True,
        foreign=400,
        note="InfluxDB's partial write: an unknown asset's line is refused (400), by number",
    ),
    ("files_api.upload_form", "POST"): Rule(
        TECHNICIAN,
        lambda c: api("POST", "/api/v1/files", form=_multipart(c)),
        names_object=True,
    ),
    ("files_api.upload_raw", "PUT"): Rule(
        TECHNICIAN,
        lambda c: api("PUT", "/api/v1/files", query=_upload_query(c), body=PDF),
        names_object=True,
    ),
    ("files_api.list_folders", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/files/folders", query={"site_id": c.ids.site}),
        names_object=True,
    ),
    ("files_api.get_file", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/files/{c.ids.file}")
    ),
    ("files_api.update_file", "PATCH"): Rule(
        TECHNICIAN,
        lambda c: api(
            "PATCH",
            f"/api/v1/files/{c.ids.file}",
            json={"description": c.unique("described")},
            headers=_if_match(c, f"/api/v1/files/{c.ids.file}"),
        ),
    ),
    ("files_api.delete_file", "DELETE"): Rule(TECHNICIAN, _delete_file),
    ("files_api.restore_file", "POST"): Rule(TECHNICIAN, _restore_file),
    ("files_api.list_versions", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/files/{c.ids.file}/versions")
    ),
    ("files_api.download", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/files/{c.ids.file}/content")
    ),
    ("files_api.list_shares", "GET"): Rule(
        VIEWER, lambda c: api("GET", f"/api/v1/files/{c.ids.file}/shares")
    ),
    ("files_api.share_file", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", f"/api/v1/files/{c.ids.file}/shares", json=_share_body()),
    ),
    ("files_api.share_folder", "POST"): Rule(
        OPERATOR,
        lambda c: api(
            "POST", "/api/v1/shares", json=_share_body(site_id=c.ids.site, folder="/matrix")
        ),
        names_object=True,
    ),
    ("files_api.revoke_share", "DELETE"): Rule(
        OPERATOR, lambda c: api("DELETE", f"/api/v1/shares/{c.fresh('share')}")
    ),
    ("files_api.list_links", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/links", query={"file_id": c.ids.file}),
        names_object=True,
    ),
    ("files_api.create_link", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/links", json={"file_id": c.ids.file, "expires_in_hours": 2}),
        names_object=True,
    ),
    ("files_api.revoke_link", "DELETE"): Rule(
        OPERATOR, lambda c: api("DELETE", f"/api/v1/links/{c.fresh('link')}")
    ),
    # --- file pages ----------------------------------------------------------------------
    ("files.detail", "GET"): Rule(VIEWER, lambda c: page("GET", f"/files/{c.ids.file}")),
    ("files.update", "POST"): Rule(
        TECHNICIAN,
        lambda c: page(
            "POST",
            f"/files/{c.ids.file}",
            {
                "revision": c.revision(f"/api/v1/files/{c.ids.file}"),
                "name": "report.pdf",
                "folder": "/",
                "description": c.unique("described"),
                "tags": "matrix",
            },
        ),
    ),
    ("files.delete", "POST"): Rule(TECHNICIAN, _delete_file_page),
    ("files.restore", "POST"): Rule(TECHNICIAN, _restore_file_page),
    ("files.content", "GET"): Rule(VIEWER, lambda c: page("GET", f"/files/{c.ids.file}/download")),
    ("files.share", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST",
            f"/files/{c.ids.file}/shares",
            {
                "grantee_type": "role",
                "grantee_id": "viewer",
                "access": "read",
                "expires_at": _share_until_form(),
            },
        ),
    ),
    ("files.create_link", "POST"): Rule(
        OPERATOR,
        lambda c: page("POST", f"/files/{c.ids.file}/links", {"expires_in_hours": "2"}),
    ),
    ("files.revoke_share", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/files/shares/{c.fresh('share')}/revoke")
    ),
    ("files.revoke_link", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/files/links/{c.fresh('link')}/revoke")
    ),
    ("files.trash", "GET"): Rule(
        VIEWER,
        lambda c: page("GET", "/files/trash", query={"site_id": c.ids.site}),
        names_object=True,
    ),
    ("files.upload", "POST"): Rule(
        TECHNICIAN, lambda c: page("POST", "/files/upload", _multipart(c)), names_object=True
    ),
    # --- grants API ------------------------------------------------------------------------
    # telemetry reads (telemetry/api.py, telemetry/views.py): telemetry.read, assets and
    # sites named in the query string, out of reach answered like missing ones
    ("telemetry.query", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/telemetry/query", query={"asset": c.ids.sensor}),
        names_object=True,
    ),
    ("telemetry.latest", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/telemetry/latest", query={"site": c.ids.site}),
        names_object=True,
    ),
    ("telemetry.metrics", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/telemetry/metrics"), site_bound=False
    ),
    ("telemetry_pages.site_dashboard", "GET"): Rule(
        VIEWER, lambda c: page("GET", f"/sites/{c.ids.site}/telemetry")
    ),
    ("telemetry_pages.query_json", "GET"): Rule(
        VIEWER,
        lambda c: page("GET", "/telemetry/query", query={"asset": c.ids.gateway, "every": "1h"}),
        names_object=True,
    ),
    ("telemetry_pages.latest_json", "GET"): Rule(
        VIEWER,
        lambda c: page("GET", "/telemetry/latest", query={"asset": c.ids.controller}),
        names_object=True,
    ),
    ("grants_api.list_grants", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/grants"), membership=True
    ),
    ("grants_api.create_grant", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/grants", json=_grant_body(c)),
        names_object=True,
    ),
    ("grants_api.get_grant", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", f"/api/v1/grants/{c.fresh('my_grant')}"),
        membership=True,
        note="One's own grant: anyone may read theirs.",
    ),
    ("grants_api.revoke_grant", "POST"): Rule(
        OPERATOR,
        lambda c: api(
            "POST", f"/api/v1/grants/{c.fresh('grant')}/revoke", json={"reason": "matrix"}
        ),
        below=404,
    ),
    ("grants_api.end_grant", "POST"): Rule(
        VIEWER,
        lambda c: api("POST", f"/api/v1/grants/{c.fresh('my_grant')}/end", json={}),
        membership=True,
        note="The holder ends their own grant early.",
    ),
    # --- access requests API ---------------------------------------------------------------
    ("requests_api.list_requests", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/access-requests"), membership=True
    ),
    ("requests_api.create_request", "POST"): Rule(
        VIEWER,
        lambda c: api("POST", "/api/v1/access-requests", json=_request_body(c)),
        names_object=True,
        membership=True,
        any_site=True,
        note="Anyone may ask, for a site they cannot see yet: another site is no secret "
        "within the organization.",
    ),
    ("requests_api.get_request", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", f"/api/v1/access-requests/{c.fresh('my_request')}"),
        membership=True,
    ),
    ("requests_api.approve_request", "POST"): Rule(
        OPERATOR,
        lambda c: api(
            "POST",
            f"/api/v1/access-requests/{c.fresh('request')}/approve",
            json={"reason": "matrix"},
        ),
        below=404,
    ),
    ("requests_api.deny_request", "POST"): Rule(
        OPERATOR,
        lambda c: api(
            "POST",
            f"/api/v1/access-requests/{c.fresh('request')}/deny",
            json={"reason": "matrix"},
        ),
        below=404,
    ),
    ("requests_api.cancel_request", "POST"): Rule(
        VIEWER,
        lambda c: api("POST", f"/api/v1/access-requests/{c.fresh('my_request')}/cancel"),
        membership=True,
    ),
    # --- members, roles, the organization --------------------------------------------------
    ("members_api.list_members", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/members"), membership=True
    ),
    ("members_api.set_member_role", "PATCH"): Rule(
        ADMIN,
        lambda c: api("PATCH", f"/api/v1/members/{c.fresh('member')}", json={"role": "technician"}),
        site=403,
        site_bound=False,
    ),
    ("members_api.remove_member", "DELETE"): Rule(
        ADMIN,
        lambda c: api("DELETE", f"/api/v1/members/{c.fresh('member')}"),
        site=403,
        site_bound=False,
    ),
    ("members_api.list_roles", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/roles"), membership=True
    ),
    ("members_api.create_role", "POST"): Rule(
        ADMIN,
        lambda c: api(
            "POST",
            "/api/v1/roles",
            json={"name": c.unique("role"), "permissions": ["site.read", "asset.read"]},
        ),
        site=403,
    ),
    ("members_api.get_role", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", f"/api/v1/roles/{c.fresh('role')}"),
        membership=True,
        site_bound=False,
    ),
    ("members_api.update_role", "PATCH"): Rule(
        ADMIN,
        lambda c: _role_write(c, "PATCH", json={"description": "matrix"}),
        site=403,
        site_bound=False,
    ),
    ("members_api.delete_role", "DELETE"): Rule(
        ADMIN, lambda c: _role_write(c, "DELETE"), site=403, site_bound=False
    ),
    ("members_api.get_organization", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/organization"), membership=True
    ),
    ("members_api.update_organization", "PATCH"): Rule(
        ADMIN,
        lambda c: api("PATCH", "/api/v1/organization", json={"max_grant_hours": 168}),
        site=403,
        note="Sends the default, so that an allowed call changes nothing.",
    ),
    # --- invitations ------------------------------------------------------------------------
    ("invitations.invitation", "GET"): Rule(
        PUBLIC, lambda c: page("GET", f"/invite/{c.fresh('invite_secret')}"), names_object=True
    ),
    ("invitations.accept", "POST"): Rule(
        PUBLIC,
        lambda c: page(
            "POST",
            f"/invite/{c.fresh('invite_secret')}",
            {"display_name": "Guest", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        names_object=True,
    ),
    ("invitations.invite_form", "GET"): Rule(OPERATOR, lambda c: page("GET", "/access/invite")),
    ("invitations.create_invitation", "POST"): Rule(
        OPERATOR,
        lambda c: page("POST", "/access/invite", _invitation_fields(c)),
        names_object=True,
    ),
    ("invitations_api.list_invitations", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/invitations"), membership=True
    ),
    ("invitations_api.create_invitation", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/invitations", json=_invitation_fields(c)),
        names_object=True,
    ),
    ("invitations_api.revoke_invitation", "DELETE"): Rule(
        ADMIN,
        lambda c: api("DELETE", f"/api/v1/invitations/{c.fresh('invitation')}"),
        below=404,
        site=404,
        note="The inviter (here the admin) or a member manager; to anyone else it is hidden.",
    ),
    # --- access pages ----------------------------------------------------------------------
    ("access.my_access", "GET"): Rule(VIEWER, lambda c: page("GET", "/access"), membership=True),
    ("access.end_grant", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", f"/access/grants/{c.fresh('my_grant')}/end"),
        membership=True,
    ),
    ("access.request_access", "POST"): Rule(
        VIEWER,
        lambda c: page(
            "POST",
            "/access/requests",
            {"role": "viewer", "site_id": c.ids.site, "hours": "1", "reason": "matrix"},
        ),
        names_object=True,
        membership=True,
        any_site=True,
    ),
    ("access.cancel_request", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", f"/access/requests/{c.fresh('my_request')}/cancel"),
        membership=True,
    ),
    ("access.site_access", "GET"): Rule(
        VIEWER, lambda c: page("GET", f"/sites/{c.ids.site}/access")
    ),
    ("access.create_grant", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST",
            f"/sites/{c.ids.site}/access/grants",
            {"user_id": c.fresh("member"), "role": "viewer", "hours": "1", "reason": "matrix"},
        ),
    ),
    ("access.revoke_grant", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST",
            f"/sites/{c.ids.site}/access/grants/{c.fresh('grant')}/revoke",
            {"reason": "matrix"},
        ),
        below=404,
    ),
    ("access.request_list", "GET"): Rule(
        VIEWER, lambda c: page("GET", "/access/requests"), membership=True
    ),
    ("access.approve_request", "POST"): Rule(
        OPERATOR,
        lambda c: page(
            "POST", f"/access/requests/{c.fresh('request')}/approve", {"reason": "matrix"}
        ),
        below=404,
    ),
    ("access.deny_request", "POST"): Rule(
        OPERATOR,
        lambda c: page("POST", f"/access/requests/{c.fresh('request')}/deny", {"reason": "matrix"}),
        below=404,
    ),
    ("access.member_list", "GET"): Rule(VIEWER, lambda c: page("GET", "/members"), membership=True),
    ("access.set_member_role", "POST"): Rule(
        ADMIN,
        lambda c: page("POST", f"/members/{c.fresh('member')}/role", {"role": "technician"}),
        site=403,
        site_bound=False,
    ),
    ("access.remove_member", "POST"): Rule(
        ADMIN,
        lambda c: page("POST", f"/members/{c.fresh('member')}/remove"),
        site=403,
        site_bound=False,
    ),
    ("access.create_role", "POST"): Rule(
        ADMIN,
        lambda c: page(
            "POST",
            "/members/roles",
            {"name": c.unique("role"), "description": "", "permissions": ["site.read"]},
        ),
        site=403,
    ),
    ("access.update_role", "POST"): Rule(
        ADMIN, lambda c: _role_form(c, ""), site=403, site_bound=False
    ),
    ("access.delete_role", "POST"): Rule(
        ADMIN, lambda c: _role_form(c, "/delete"), site=403, site_bound=False
    ),
    ("access.set_max_grant_hours", "POST"): Rule(
        ADMIN,
        lambda c: page("POST", "/members/max-grant-hours", {"max_grant_hours": "168"}),
        site=403,
        note="Sends the default, so that an allowed call changes nothing.",
    ),
}


#: Matrix cells where the app does not (yet) do what the policy says, and the lead has to
#: decide: ``(endpoint, method, role, target) -> why``. Such a cell is reported as
#: "xfail" while it still deviates, and fails as soon as it conforms (remove it then).
KNOWN_DEVIATIONS: dict[tuple[str, str, str, str], str] = {}
