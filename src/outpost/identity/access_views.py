"""Access pages: my access (grants, requests, asking for access), who has access to a
site and until when (grant, revoke), the access requests an approver can answer, and
members with their roles, the custom roles and the longest grant.

Each handler parses the form, calls one service function in the request's unit of work
and renders. A refused form re-renders its page (422, or 409 for a conflict) with each
violation beside its field; Forbidden and NotFound are the shared error page; a sensitive
action refused with ``MfaRequired`` goes through the fresh-MFA confirmation and back to
the page named by the form's ``next`` field (``mfa_views``). Whether a form is shown is a
courtesy: the services decide every write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from pydantic import Field
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from outpost.clock import utcnow
from outpost.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RuleViolation,
)
from outpost.identity import custom_roles, grants, members, requests, service
from outpost.identity.member_schemas import OrganizationAccessIn, RoleCreate, RolePatch
from outpost.identity.members import MAX_GRANT_HOURS
from outpost.identity.models import AccessRequest, Grant
from outpost.identity.principal import Principal
from outpost.identity.roles import NO_ROLE, Permission
from outpost.identity.schemas import Strict
from outpost.inventory import queries as inventory_queries
from outpost.inventory import service as inventory
from outpost.inventory.models import Asset
from outpost.inventory.schemas import AssetFilter, SiteFilter
from outpost.web import forms
from outpost.web.context import actor, principal, transaction

bp = Blueprint("access", __name__, template_folder="templates")

View = str | tuple[str, int] | Response
Refusal = BadRequest | RuleViolation | Conflict | PreconditionFailed
REFUSALS = (BadRequest, RuleViolation, Conflict, PreconditionFailed)
PICKER_LIMIT = 200
GRANT_FIELDS = ("user_id", "role", "asset_id", "hours", "reason")
REQUEST_FIELDS = ("role", "site_id", "asset_id", "hours", "reason")
ROLE_FIELDS = ("name", "description", "permissions")
Hours = Annotated[int, Field(ge=1, le=MAX_GRANT_HOURS)]


class GrantForm(Strict):
    user_id: str = ""
    role: str = ""
    asset_id: str | None = None
    hours: Hours
    reason: Annotated[str, Field(max_length=500)] = ""

    def spec(self, site_id: str, now: datetime) -> grants.GrantSpec:
        """The grant: on the chosen asset's subtree, else on the whole site."""
        return grants.GrantSpec(
            user_id=self.user_id,
            role=self.role,
            reason=self.reason,
            site_id=None if self.asset_id else site_id,
            asset_id=self.asset_id,
            starts_at=now,
            expires_at=now + timedelta(hours=self.hours),
        )


class RequestForm(Strict):
    role: str = ""
    site_id: str | None = None
    asset_id: str | None = None
    hours: Hours
    reason: Annotated[str, Field(max_length=500)] = ""


# --- what the pages show ----------------------------------------------------------------


@dataclass
class FormState:
    """A refused form (named by ``key``): the values sent, the violations, the refusal."""

    key: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    errors: forms.FormErrors = field(default_factory=lambda: forms.NO_ERRORS)
    problem: str | None = None

    def errors_of(self, key: str) -> forms.FormErrors:
        return self.errors if key == self.key else forms.NO_ERRORS

    def problem_of(self, key: str) -> str | None:
        return self.problem if key == self.key else None

    def value(self, key: str, name: str, default: str = "") -> str:
        return self.values.get(name, default) if key == self.key else default


NO_FORM = FormState()


def _refused(
    key: str, exc: Refusal, fields: Iterable[str], renames: Mapping[str, str] | None = None
) -> tuple[FormState, int]:
    """The state a refused form re-renders with, and its status (409: a conflict)."""
    renamed = [
        replace(v, path=(renames or {}).get(v.path, v.path)) for v in getattr(exc, "violations", [])
    ]
    errors = forms.split_violations(renamed, None, fields)
    status = 409 if isinstance(exc, Conflict | PreconditionFailed) else 422
    return FormState(key, request.form, errors, exc.detail), status


@dataclass(frozen=True)
class ScopeLabel:
    kind: str  # "organization", "site" or "asset"
    label: str
    url: str | None


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    state: str  # "active", "upcoming", "revoked" or "expired"
    holder: str
    granted_by: str
    revoked_by: str
    scope: ScopeLabel
    remaining: str

    @property
    def ended(self) -> bool:
        return self.state in {"revoked", "expired"}


@dataclass(frozen=True)
class RequestRow:
    request: AccessRequest
    status: str
    requester: str
    decided_by: str
    scope: ScopeLabel
    duration: str


def span_text(span: timedelta) -> str:
    """A duration as people say it: ``2 d 3 h``, ``3 h 59 min``, ``12 min``."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _state(grant: Grant, now: datetime) -> str:
    if grants.is_live(grant, now):
        return "active"
    if grant.revoked_at is not None:
        return "revoked"
    if grant.expires_at is not None and grant.expires_at <= now:
        return "expired"
    return "upcoming"


def _remaining(grant: Grant, state: str, now: datetime) -> str:
    if state == "upcoming":
        return f"starts in {span_text(grant.starts_at - now)}"
    if state != "active":
        return "—"
    return "no end" if grant.expires_at is None else span_text(grant.expires_at - now)


STATE_ORDER = {"active": 0, "upcoming": 1, "revoked": 2, "expired": 2}


class Labels:
    """Emails of members and names of the sites and assets that grants and requests
    name, read once per page (a site or asset the user cannot see shows its id)."""

    def __init__(
        self, session: Session, who: Principal, areas: Iterable[tuple[str | None, str | None]]
    ) -> None:
        found = list(areas)
        self.emails = {m.user_id: m.email for m in service.list_members(session, who)}
        self.sites: dict[str, str] = {}
        for site_id in sorted({site for site, asset in found if site and not asset}):
            try:
                self.sites[site_id] = inventory.get_site(session, who, site_id).name
            except NotFound:
                continue
        asset_ids = {asset for _, asset in found if asset}
        try:
            self.assets = inventory_queries.asset_names(session, who, asset_ids)
        except Forbidden:
            self.assets = {}

    def email(self, user_id: str | None) -> str:
        return "" if user_id is None else self.emails.get(user_id, user_id)

    def scope(self, site_id: str | None, asset_id: str | None) -> ScopeLabel:
        if asset_id:
            name = self.assets.get(asset_id)
            url = url_for("inventory.asset", asset_id=asset_id) if name else None
            return ScopeLabel("asset", name or asset_id, url)
        if site_id:
            name = self.sites.get(site_id)
            url = url_for("inventory.site", site_id=site_id) if name else None
            return ScopeLabel("site", name or site_id, url)
        return ScopeLabel("organization", "the whole organization", None)


def grant_rows(session: Session, who: Principal, found: Iterable[Grant]) -> list[GrantRow]:
    """Rows for grants, active first, then upcoming, then ended; soonest end first."""
    listed = list(found)
    labels = Labels(session, who, ((x.site_id, x.asset_id) for x in listed))
    now = utcnow()
    rows = []
    for grant in listed:
        state = _state(grant, now)
        rows.append(
            GrantRow(
                grant,
                state,
                labels.email(grant.user_id),
                labels.email(grant.granted_by),
                labels.email(grant.revoked_by),
                labels.scope(grant.site_id, grant.asset_id),
                _remaining(grant, state, now),
            )
        )
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(rows, key=lambda r: (STATE_ORDER[r.state], r.grant.expires_at or far))


def request_rows(
    session: Session, who: Principal, found: Iterable[AccessRequest]
) -> list[RequestRow]:
    listed = list(found)
    labels = Labels(session, who, ((x.site_id, x.asset_id) for x in listed))
    now = utcnow()
    return [
        RequestRow(
            x,
            requests.status_at(x, now),
            labels.email(x.user_id),
            labels.email(x.decided_by),
            labels.scope(x.site_id, x.asset_id),
            span_text(timedelta(minutes=x.duration_minutes)),
        )
        for x in listed
    ]


def _roles(session: Session, who: Principal) -> list[custom_roles.RoleView]:
    """The roles one can give or ask for (not ``none``, which gives nothing)."""
    return [role for role in custom_roles.list_roles(session, who) if role.name != NO_ROLE]


def _max_hours(session: Session, who: Principal) -> int:
    return int(grants.max_duration(session, who.org_id).total_seconds() // 3600)


def _see_other(endpoint: str, notice: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values, notice=notice), 303)


def _web_session() -> str | None:
    found: str | None = g.get("web_session_id")
    return found


# --- my access --------------------------------------------------------------------------


def _pickers(
    session: Session, who: Principal
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The sites and assets the user can see, for the request form (ids may be typed)."""
    try:
        sites = inventory_queries.list_sites(session, who, SiteFilter(limit=PICKER_LIMIT)).items
        site_options = [(site.id, f"{site.name} ({site.code})") for site, _ in sites]
    except Forbidden:
        site_options = []
    try:
        assets = inventory_queries.list_assets(session, who, AssetFilter(limit=PICKER_LIMIT)).items
        asset_options = [(asset.id, asset.name) for asset in assets]
    except Forbidden:
        asset_options = []
    return site_options, asset_options


def _render_mine(state: FormState = NO_FORM, status: int = 200) -> View:
    with transaction() as session:
        who = principal()
        mine = grants.list_grants(session, who, grants.GrantFilter(user_id=who.user_id, limit=100))
        asked = requests.list_requests(session, who, mine=True, limit=50).items
        sites, assets = _pickers(session, who)
        html = render_template(
            "identity/access/my_access.html",
            role=custom_roles.get_role(session, who, who.role),
            grants=grant_rows(session, who, mine[:100]),
            requests=request_rows(session, who, asked),
            roles=_roles(session, who),
            sites=sites,
            assets=assets,
            max_hours=_max_hours(session, who),
            form=state,
        )
    return html, status


@bp.get("/access")
def my_access() -> View:
    return _render_mine()


@bp.post("/access/grants/<grant_id>/end")
def end_grant(grant_id: str) -> View:
    reason = request.form.get("reason", "")
    with transaction() as session:
        grants.end_grant(session, actor(reason or None), grant_id, reason)
    return _see_other(".my_access", "grant-ended")


@bp.post("/access/requests")
def request_access() -> View:
    try:
        body = forms.parse(RequestForm, forms.query_values(request.form, REQUEST_FIELDS))
        with transaction() as session:
            requests.request_access(
                session,
                actor(body.reason),
                role=body.role,
                site_id=body.site_id,
                asset_id=body.asset_id,
                duration_minutes=body.hours * 60,
                reason=body.reason,
            )
    except REFUSALS as exc:
        return _render_mine(
            *_refused("request", exc, REQUEST_FIELDS, {"duration_minutes": "hours"})
        )
    return _see_other(".my_access", "request-created")


@bp.post("/access/requests/<request_id>/cancel")
def cancel_request(request_id: str) -> View:
    with transaction() as session:
        requests.cancel(session, actor(), request_id)
    return _see_other(".my_access", "request-cancelled")


# --- who has access to a site -----------------------------------------------------------


def _tree(session: Session, who: Principal, site_id: str) -> list[Asset]:
    """The site's assets the user may read (none for a role that reads sites only)."""
    try:
        return inventory_queries.site_tree(session, who, site_id)
    except Forbidden:
        return []


def _render_site(site_id: str, state: FormState = NO_FORM, status: int = 200) -> View:
    with transaction() as session:
        who = principal()
        site = inventory.get_site(session, who, site_id)
        tree = _tree(session, who, site.id)
        here = grants.list_grants(session, who, grants.GrantFilter(site_id=site.id, limit=200))
        whole = grants.list_grants(
            session, who, grants.GrantFilter(state="active", organization_wide=True, limit=200)
        )
        rows = grant_rows(session, who, [*here[:200], *whole[:200]])
        everyone = service.list_members(session, who)
        html = render_template(
            "identity/access/site_access.html",
            site=site,
            tree=tree,
            members=[m for m in everyone if m.role != NO_ROLE],
            candidates=[m for m in everyone if m.user_id != who.user_id],
            grants=[row for row in rows if row.scope.kind != "organization"],
            whole=[row for row in rows if row.scope.kind == "organization"],
            roles=_roles(session, who),
            may_grant=grants.may_grant_on_site(who, site.id, {asset.id for asset in tree}),
            max_hours=_max_hours(session, who),
            form=state,
        )
    return html, status


@bp.get("/sites/<site_id>/access")
def site_access(site_id: str) -> View:
    return _render_site(site_id)


@bp.post("/sites/<site_id>/access/grants")
def create_grant(site_id: str) -> View:
    try:
        body = forms.parse(GrantForm, forms.query_values(request.form, GRANT_FIELDS))
        with transaction() as session:
            grants.create_grant(
                session,
                actor(body.reason),
                body.spec(site_id, utcnow()),
                web_session_id=_web_session(),
            )
    except REFUSALS as exc:
        return _render_site(site_id, *_refused("grant", exc, GRANT_FIELDS, {"expires_at": "hours"}))
    return _see_other(".site_access", "grant-created", site_id=site_id)


@bp.post("/sites/<site_id>/access/grants/<grant_id>/revoke")
def revoke_grant(site_id: str, grant_id: str) -> View:
    reason = request.form.get("reason", "")
    try:
        with transaction() as session:
            grants.revoke_grant(session, actor(reason or None), grant_id, reason)
    except REFUSALS as exc:
        return _render_site(site_id, *_refused(f"revoke-{grant_id}", exc, ("reason",)))
    return _see_other(".site_access", "grant-revoked", site_id=site_id)


# --- access requests to answer ----------------------------------------------------------


def _render_requests(state: FormState = NO_FORM, status: int = 200) -> View:
    with transaction() as session:
        who = principal()
        found = requests.list_requests(session, who, limit=100).items
        rows = request_rows(session, who, [x for x in found if x.user_id != who.user_id])
        html = render_template(
            "identity/access/request_list.html",
            pending=[row for row in rows if row.status == requests.PENDING],
            decided=[row for row in rows if row.status != requests.PENDING],
            form=state,
        )
    return html, status


@bp.get("/access/requests")
def request_list() -> View:
    return _render_requests()


@bp.post("/access/requests/<request_id>/approve")
def approve_request(request_id: str) -> View:
    reason = request.form.get("reason", "")
    try:
        with transaction() as session:
            requests.approve(
                session,
                actor(reason or None),
                request_id,
                reason=reason,
                web_session_id=_web_session(),
            )
    except REFUSALS as exc:
        return _render_requests(*_refused(request_id, exc, ("reason",)))
    return _see_other(".request_list", "request-approved")


@bp.post("/access/requests/<request_id>/deny")
def deny_request(request_id: str) -> View:
    reason = request.form.get("reason", "")
    try:
        with transaction() as session:
            requests.deny(session, actor(reason or None), request_id, reason=reason)
    except REFUSALS as exc:
        return _render_requests(*_refused(request_id, exc, ("reason",)))
    return _see_other(".request_list", "request-denied")


# --- members, roles and the longest grant -----------------------------------------------


def _render_members(state: FormState = NO_FORM, status: int = 200) -> View:
    with transaction() as session:
        who = principal()
        roles = custom_roles.list_roles(session, who)
        html = render_template(
            "identity/access/member_list.html",
            members=service.list_members(session, who),
            roles=roles,
            custom=[role for role in roles if not role.builtin],
            permissions=[p.value for p in Permission],
            max_hours=_max_hours(session, who),
            ceiling=MAX_GRANT_HOURS,
            form=state,
        )
    return html, status


@bp.get("/members")
def member_list() -> View:
    return _render_members()


@bp.post("/members/<user_id>/role")
def set_member_role(user_id: str) -> View:
    try:
        with transaction() as session:
            members.set_member_role(
                session,
                actor(),
                user_id,
                request.form.get("role", ""),
                web_session_id=_web_session(),
            )
    except REFUSALS as exc:
        return _render_members(*_refused(f"member-{user_id}", exc, ("role",)))
    return _see_other(".member_list", "member-role-saved")


@bp.post("/members/<user_id>/remove")
def remove_member(user_id: str) -> View:
    try:
        with transaction() as session:
            members.remove_member(session, actor(), user_id, web_session_id=_web_session())
    except REFUSALS as exc:
        return _render_members(*_refused(f"member-{user_id}", exc, ("role",)))
    return _see_other(".member_list", "member-removed")


@bp.post("/members/roles")
def create_role() -> View:
    form = request.form
    try:
        body = forms.parse(
            RoleCreate,
            {
                "name": form.get("name", ""),
                "description": form.get("description", ""),
                "permissions": form.getlist("permissions"),
            },
        )
        with transaction() as session:
            custom_roles.create_role(
                session,
                actor(),
                name=body.name,
                permissions=body.permissions,
                description=body.description,
                web_session_id=_web_session(),
            )
    except REFUSALS as exc:
        return _render_members(*_refused("role-new", exc, ROLE_FIELDS))
    return _see_other(".member_list", "role-created")


@bp.post("/members/roles/<name>")
def update_role(name: str) -> View:
    form = request.form
    try:
        revision = forms.revision(form)
        body = forms.parse(
            RolePatch,
            {
                "description": form.get("description", ""),
                "permissions": form.getlist("permissions"),
            },
        )
        with transaction() as session:
            custom_roles.update_role(
                session,
                actor(),
                name,
                if_revision=revision,
                permissions=body.permissions,
                description=body.description,
                web_session_id=_web_session(),
            )
    except REFUSALS as exc:
        return _render_members(*_refused(f"role-{name}", exc, ROLE_FIELDS))
    return _see_other(".member_list", "role-saved")


@bp.post("/members/roles/<name>/delete")
def delete_role(name: str) -> View:
    try:
        revision = forms.revision(request.form)
        with transaction() as session:
            custom_roles.delete_role(
                session, actor(), name, if_revision=revision, web_session_id=_web_session()
            )
    except REFUSALS as exc:
        return _render_members(*_refused(f"role-{name}", exc, ROLE_FIELDS))
    return _see_other(".member_list", "role-deleted")


@bp.post("/members/max-grant-hours")
def set_max_grant_hours() -> View:
    try:
        body = forms.parse(
            OrganizationAccessIn, forms.query_values(request.form, ("max_grant_hours",))
        )
        with transaction() as session:
            members.set_max_grant_hours(
                session, actor(), body.max_grant_hours, web_session_id=_web_session()
            )
    except REFUSALS as exc:
        return _render_members(*_refused("max-grant", exc, ("max_grant_hours",)))
    return _see_other(".member_list", "max-grant-saved")
