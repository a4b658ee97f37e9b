"""The authorization policy the route matrix checks the app against: one row per route.

A row is keyed by ``(endpoint, method)`` as Flask names them (``app.url_map``) and says
who may call the route, from ``PUBLIC`` (anyone, no credential: it must be in
``outpost.web.auth.PUBLIC_ENDPOINTS``) up to ``ADMIN``. Roles are organization-wide
today and ordered ``viewer < operator < admin`` (``outpost.identity.roles``); a role
at or above a row's minimum is allowed, a role below it is refused.

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
OPERATOR = "operator"
ADMIN = "admin"

#: The built-in roles, weakest first; a role is allowed on a row whose minimum it reaches.
ROLES: tuple[str, ...] = (VIEWER, OPERATOR, ADMIN)

#: Where a role is held. Only organization-wide roles exist today; scoped roles (a site,
#: an asset subtree) and grants will add "site" and "subtree" here, and the matrix will
#: then run each role on each scope.
SCOPES: tuple[str, ...] = ("organization",)

#: Whose objects a request names: the caller's own, another tenant's, or ids that exist
#: nowhere. Scoped roles will add "other_site" (same tenant, outside the caller's scope:
#: expected 404 like another tenant's object, or 403 where the lead decides so).
TARGETS: tuple[str, ...] = ("own", "other_tenant", "missing")

#: Requests that must be refused as unauthenticated whatever the route (401 on the API,
#: a redirect to /login for pages): no credential, a revoked one (a revoked token, a
#: logged-out session), an expired one, and a valid credential of the other kind (a
#: session cookie on the API, which has no CSRF check; a bearer token on a page). Grants
#: will add "expired_grant" and "revoked_grant" here (a principal whose only access is
#: a grant past its ``expires_at``, or revoked: 401 or 403 as the grant design says).
CREDENTIAL_CASES: tuple[str, ...] = ("anonymous", "revoked", "expired", "cross_kind")

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
        VIEWER, lambda c: page("POST", "/logout"), caller="fresh_session", lands_on_login=True
    ),
    ("identity_api.me", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/me")),
    ("identity_api.list_tokens", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/tokens")),
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
    ("identity.tokens", "GET"): Rule(VIEWER, lambda c: page("GET", "/tokens")),
    ("identity.create_token", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/tokens", {"name": c.unique("token"), "expires_in_days": "1"}),
    ),
    ("identity.revoke_token", "POST"): Rule(
        VIEWER, lambda c: page("POST", f"/tokens/{c.fresh('token')}/revoke")
    ),
    ("identity.account_page", "GET"): Rule(VIEWER, lambda c: page("GET", "/account")),
    ("identity.change_password", "POST"): Rule(
        VIEWER,
        lambda c: page(
            "POST",
            "/account/password",
            {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        caller="fresh_user",
    ),
    ("identity.log_out_everywhere", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/logout-everywhere"),
        caller="fresh_user",
        lands_on_login=True,
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
    ("mfa.status_page", "GET"): Rule(VIEWER, lambda c: page("GET", "/account/mfa")),
    ("mfa.confirm", "GET"): Rule(
        VIEWER, lambda c: page("GET", "/account/mfa/confirm", query={"next": "/tokens"})
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
    ),
    ("mfa.regenerate", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/mfa/recovery-codes", {"code": c.second_factor()}),
        caller="fresh_mfa_user",
    ),
    ("mfa.disable", "POST"): Rule(
        VIEWER,
        lambda c: page("POST", "/account/mfa/disable", {"code": c.second_factor()}),
        caller="fresh_mfa_user",
    ),
    ("mfa.policy", "POST"): Rule(
        ADMIN,
        lambda c: page("POST", "/account/mfa/policy", {"required": "0"}),
        note="Sends the current value (not required), so that an allowed call changes "
        "nothing: requiring MFA would send every member of the matrix's tenant to enrolment.",
    ),
    # --- inventory API -------------------------------------------------------------------
    ("inventory_api.list_sites", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/sites")),
    ("inventory_api.create_site", "POST"): Rule(
        OPERATOR, lambda c: api("POST", "/api/v1/sites", json=_site_body(c))
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
    ("inventory_api.delete_site", "DELETE"): Rule(OPERATOR, _delete_site),
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
    ("inventory.fleet", "GET"): Rule(VIEWER, lambda c: page("GET", "/")),
    ("inventory.site", "GET"): Rule(VIEWER, lambda c: page("GET", f"/sites/{c.ids.site}")),
    ("inventory.update_site", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/sites/{c.ids.site}", _site_form(c))
    ),
    ("inventory.asset", "GET"): Rule(VIEWER, lambda c: page("GET", f"/assets/{c.ids.sensor}")),
    ("inventory.update_asset", "POST"): Rule(
        OPERATOR, lambda c: page("POST", f"/assets/{c.ids.sensor}", _sensor_form(c))
    ),
    ("inventory.delete_asset", "POST"): Rule(OPERATOR, _delete_asset_page),
    ("inventory.changeset", "GET"): Rule(VIEWER, lambda c: page("GET", "/changesets/new")),
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
    ("audit_api.list_audit", "GET"): Rule(VIEWER, lambda c: api("GET", "/api/v1/audit")),
    ("audit_api.export_audit", "GET"): Rule(
        VIEWER, lambda c: api("GET", "/api/v1/audit/export", query={"format": "csv"})
    ),
    ("audit.events", "GET"): Rule(VIEWER, lambda c: page("GET", "/audit")),
    ("audit.export_events", "GET"): Rule(VIEWER, lambda c: page("GET", "/audit/export")),
    # --- files API -----------------------------------------------------------------------
    ("files_api.list_files", "GET"): Rule(
        VIEWER,
        lambda c: api("GET", "/api/v1/files", query={"site_id": c.ids.site}),
        names_object=True,
    ),
    ("files_api.upload_form", "POST"): Rule(
        OPERATOR,
        lambda c: api("POST", "/api/v1/files", form=_multipart(c)),
        names_object=True,
    ),
    ("files_api.upload_raw", "PUT"): Rule(
        OPERATOR,
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
        OPERATOR,
        lambda c: api(
            "PATCH",
            f"/api/v1/files/{c.ids.file}",
            json={"description": c.unique("described")},
            headers=_if_match(c, f"/api/v1/files/{c.ids.file}"),
        ),
    ),
    ("files_api.delete_file", "DELETE"): Rule(OPERATOR, _delete_file),
    ("files_api.restore_file", "POST"): Rule(OPERATOR, _restore_file),
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
        OPERATOR,
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
    ("files.delete", "POST"): Rule(OPERATOR, _delete_file_page),
    ("files.restore", "POST"): Rule(OPERATOR, _restore_file_page),
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
        OPERATOR, lambda c: page("POST", "/files/upload", _multipart(c)), names_object=True
    ),
}


#: Matrix cells where the app does not (yet) do what the policy says, and the lead has to
#: decide: ``(endpoint, method, role, target) -> why``. Such a cell is reported as
#: "xfail" while it still deviates, and fails as soon as it conforms (remove it then).
KNOWN_DEVIATIONS: dict[tuple[str, str, str, str], str] = {}
