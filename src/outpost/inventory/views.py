"""Inventory pages: the fleet, a site and its asset tree, an asset and its config, change sets.

Each handler parses the form, calls one service function in the request's unit of work
and renders. A refused write re-renders the form: rule violations beside their fields,
a stale revision as a "someone else changed this" message over the current values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from outpost.audit import queries as audit_queries
from outpost.errors import BadRequest, Conflict, Forbidden, PreconditionFailed, RuleViolation
from outpost.files import views as files_views
from outpost.identity.principal import Principal
from outpost.inventory import importer, queries, service
from outpost.inventory.catalogue import CATALOGUE, AssetType
from outpost.inventory.models import Asset, Site
from outpost.inventory.planner import Plan
from outpost.inventory.schemas import AssetFilter, ChangeSetIn, SiteFilter
from outpost.validation import Violation, field_violations
from outpost.web import forms
from outpost.web.context import actor, principal, transaction
from outpost.web.text_guard import load_json

bp = Blueprint("inventory", __name__, template_folder="templates")

Page = str | tuple[str, int] | Response
HISTORY_LIMIT = 50
ASSET_FIELDS = ("name", "serial", "tags")


def _names(session: Session, who: Principal, violations: Iterable[Violation]) -> dict[str, str]:
    ids = {i for v in violations for i in (v.object_id, *v.related) if i}
    return queries.asset_names(session, who, ids)


# --- fleet ------------------------------------------------------------------------------


@bp.get("/")
def fleet() -> Page | Response:
    """The sites in reach; a member who holds nothing yet lands on their access page,
    where they can ask for some."""
    filters = forms.parse(SiteFilter, forms.query_values(request.args, ("q", "cursor")))
    with transaction() as session:
        who = principal()
        try:
            page = queries.list_sites(session, who, filters)
        except Forbidden:
            return redirect(url_for("access.my_access", notice="no-access"))
        total = queries.count_assets(session, who)
        return render_template(
            "inventory/site_list.html", page=page, filters=filters, total_assets=total
        )


# --- sites ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeRow:
    asset: Asset
    depth: int
    key_config: list[tuple[str, str]]


def _key_config(asset: Asset) -> list[tuple[str, str]]:
    """The config values that place an asset on its network or bus, read from its type."""
    kind: AssetType | None = CATALOGUE.get(asset.type)
    if kind is None:
        return []
    keys = (
        kind.ip_key,
        kind.subnet_key,
        kind.modbus_address_key,
        kind.channel_key,
        kind.channel_count_key,
        kind.power_kw_key,
        kind.provides_zone_key,
    )
    return [
        (key, forms.display_value(asset.config[key]))
        for key in keys
        if key is not None and key in asset.config
    ]


def _tree(assets: list[Asset]) -> list[TreeRow]:
    depth: dict[str, int] = {}
    rows = []
    for asset in assets:  # parents come before their children
        depth[asset.id] = depth.get(asset.parent_id or "", -1) + 1
        rows.append(TreeRow(asset, depth[asset.id], _key_config(asset)))
    return rows


def _render_site(
    site_id: str,
    *,
    values: Mapping[str, str] | None = None,
    errors: forms.FormErrors = forms.NO_ERRORS,
    revision: int | None = None,
    stale: str | None = None,
    status: int = 200,
) -> Page:
    with transaction() as session:
        who = principal()
        site: Site = service.get_site(session, who, site_id)
        tree = _tree(queries.site_tree(session, who, site.id))
        files = files_views.browser(session, who, request.args, site_id=site.id)
        html = render_template(
            "inventory/site_detail.html",
            site=site,
            tree=tree,
            files=files,
            types=CATALOGUE,
            values=values if values is not None else forms.site_values(site.audit_snapshot()),
            errors=errors,
            revision=revision if revision is not None else site.revision,
            stale=stale,
            names=_names(session, who, errors.all()),
        )
    return html, status


@bp.get("/sites/<site_id>")
def site(site_id: str) -> Page:
    return _render_site(site_id)


@bp.post("/sites/<site_id>")
def update_site(site_id: str) -> Page:
    form = request.form
    revision = forms.revision(form)
    try:
        with transaction() as session:
            service.update_site(
                session,
                actor(form.get("reason")),
                site_id,
                forms.site_patch(form),
                if_revision=revision,
            )
    except RuleViolation as exc:
        errors = forms.split_violations(exc.violations, site_id, forms.SITE_FIELDS)
        return _render_site(site_id, values=form, errors=errors, revision=revision, status=422)
    except PreconditionFailed as exc:
        return _render_site(site_id, stale=exc.detail, status=409)
    return redirect(url_for(".site", site_id=site_id, notice="site-saved"), 303)


# --- assets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    event: dict[str, Any]
    changes: list[forms.Change]


@dataclass
class AssetForm:
    """What the asset page shows in its forms besides the stored asset."""

    values: Mapping[str, str] | None = None
    errors: forms.FormErrors = forms.NO_ERRORS
    revision: int | None = None
    stale: str | None = None
    delete_problem: str | None = None
    delete_errors: forms.FormErrors = field(default_factory=lambda: forms.NO_ERRORS)


def _schema(asset: Asset) -> tuple[dict[str, Any], list[forms.ConfigField]]:
    kind = CATALOGUE.get(asset.type)
    schema = dict(kind.config_schema) if kind else {}
    return schema, forms.config_fields(schema)


def _render_asset(asset_id: str, state: AssetForm | None = None, status: int = 200) -> Page:
    state = state or AssetForm()
    with transaction() as session:
        who = principal()
        asset = service.get_asset(session, who, asset_id)
        site = service.get_site(session, who, asset.site_id)
        parent = service.readable_asset(session, who, asset.parent_id)
        children = queries.list_assets(
            session, who, AssetFilter(parent_id=asset.id, limit=500)
        ).items
        events = audit_queries.object_history(session, who, "asset", asset.id, HISTORY_LIMIT)
        history = [
            HistoryRow(e, forms.changes(e["before"], e["after"]))
            for e in map(audit_queries.event_dict, events)
        ]
        files = files_views.browser(session, who, request.args, asset_id=asset.id)
        _, fields = _schema(asset)
        values = state.values
        if values is None:
            values = {
                "name": asset.name,
                "serial": asset.serial,
                "tags": ", ".join(asset.tags),
                **forms.config_values(asset.config, fields),
            }
        shown = [*state.errors.all(), *state.delete_errors.all()]
        html = render_template(
            "inventory/asset_detail.html",
            asset=asset,
            kind=CATALOGUE.get(asset.type),
            site=site,
            parent=parent,
            children=children,
            history=history,
            files=files,
            fields=fields,
            values=values,
            form=state,
            errors=state.errors,
            revision=state.revision if state.revision is not None else asset.revision,
            names=_names(session, who, shown),
        )
    return html, status


@bp.get("/assets/<asset_id>")
def asset(asset_id: str) -> Page:
    return _render_asset(asset_id)


@bp.post("/assets/<asset_id>")
def update_asset(asset_id: str) -> Page:
    form = request.form
    revision = forms.revision(form)
    try:
        with transaction() as session:
            current = service.get_asset(session, principal(), asset_id)
            schema, fields = _schema(current)
            updated = service.update_asset(
                session,
                actor(form.get("reason")),
                asset_id,
                forms.asset_patch(form, fields, schema),
                if_revision=revision,
            )
    except RuleViolation as exc:
        names = [*ASSET_FIELDS, *(f.name for f in fields)]
        errors = forms.split_violations(exc.violations, asset_id, names)
        return _render_asset(asset_id, AssetForm(form, errors, revision), 422)
    except PreconditionFailed as exc:
        return _render_asset(asset_id, AssetForm(stale=exc.detail), 409)
    notice = "asset-saved" if updated.revision != revision else "asset-unchanged"
    return redirect(url_for(".asset", asset_id=asset_id, notice=notice), 303)


@bp.post("/assets/<asset_id>/delete")
def delete_asset(asset_id: str) -> Page:
    form = request.form
    try:
        with transaction() as session:
            site_id = service.get_asset(session, principal(), asset_id).site_id
            service.delete_asset(
                session,
                actor(form.get("reason")),
                asset_id,
                if_revision=forms.revision(form),
                cascade=form.get("cascade") == "yes",
            )
    except (Conflict, RuleViolation) as exc:
        problem = forms.FormErrors({}, exc.violations)
        return _render_asset(
            asset_id, AssetForm(delete_problem=exc.detail, delete_errors=problem), 409
        )
    except PreconditionFailed as exc:
        return _render_asset(asset_id, AssetForm(stale=exc.detail), 409)
    return redirect(url_for(".site", site_id=site_id, notice="asset-deleted"), 303)


# --- change sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    op: str
    asset_id: str
    name: str
    type: str
    changes: list[forms.Change]
    violations: list[Violation]


@dataclass
class ChangeSetPage:
    """The change-set form and, once planned or applied, what came of it."""

    source: str = "json"
    text: str = ""
    csv_text: str = ""
    reason: str = ""
    error: str | None = None
    problems: list[Violation] = field(default_factory=list)
    planned: bool = False
    applied: bool = False
    summary: dict[str, int] = field(default_factory=dict)
    diffs: list[DiffRow] = field(default_factory=list)
    csv_rows: int = 0
    csv_lines: dict[int, list[Violation]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.planned and not self.error and not self.problems and not self.csv_lines


def _diff_rows(plan: Plan, violations: list[Violation]) -> list[DiffRow]:
    rows = []
    for diff in plan.diffs:
        shown = diff.after or diff.before or {}
        rows.append(
            DiffRow(
                diff.op,
                diff.asset_id,
                str(shown.get("name", diff.asset_id)),
                str(shown.get("type", "")),
                forms.changes(diff.before, diff.after, skip=("revision", "id")),
                [v for v in violations if v.object_id == diff.asset_id],
            )
        )
    return rows


def _plan_json(page: ChangeSetPage, *, apply: bool) -> None:
    try:
        changeset = ChangeSetIn.model_validate(load_json(page.text.encode(), "The change set"))
    except BadRequest as exc:
        page.error, page.problems = exc.detail, exc.violations
        return
    except ValidationError as exc:
        page.error = "The change set does not have the expected shape."
        page.problems = field_violations(exc)
        return
    try:
        with transaction() as session:
            outcome = service.run_changeset(
                session, actor(page.reason or changeset.reason), changeset, dry_run=not apply
            )
    except RuleViolation as exc:
        page.error, page.problems = exc.detail, exc.violations
        return
    page.planned, page.applied = True, outcome.applied
    page.problems = outcome.plan.located_violations()
    page.summary = outcome.plan.summary()
    page.diffs = _diff_rows(outcome.plan, page.problems)


def _plan_csv(page: ChangeSetPage, *, apply: bool) -> None:
    try:
        with transaction() as session:
            report = importer.import_csv(session, actor(page.reason), page.csv_text, apply=apply)
    except BadRequest as exc:
        page.error, page.problems = exc.detail, exc.violations
        return
    page.planned, page.applied = True, report.applied
    page.csv_rows, page.csv_lines = report.rows, report.problems


def _csv_upload() -> str | None:
    upload = request.files.get("csv")
    if upload is None or not upload.filename:
        return None
    data: bytes = upload.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The CSV file is not UTF-8 text.") from exc


@bp.get("/changesets/new")
def changeset() -> Page:
    return render_template("inventory/changeset_form.html", page=ChangeSetPage())


@bp.post("/changesets/new")
def run_changeset() -> Page:
    form = request.form
    page = ChangeSetPage(text=form.get("changeset", ""), reason=form.get("reason", ""))
    apply = form.get("action") == "apply"
    try:
        uploaded = _csv_upload()
    except BadRequest as exc:
        page.error = exc.detail
        return render_template("inventory/changeset_form.html", page=page), 400
    page.csv_text = uploaded if uploaded is not None else form.get("csv_text", "")
    if page.csv_text.strip():
        page.source = "csv"
        _plan_csv(page, apply=apply)
    elif page.text.strip():
        _plan_json(page, apply=apply)
    else:
        page.error = "Paste a change set or choose a CSV file."
    status = 200 if page.planned or not page.error else 422
    return render_template("inventory/changeset_form.html", page=page), status
