"""Inventory REST API: ``/api/v1/sites``, ``/assets``, ``/asset-types``, ``/changesets``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from outpost.inventory import queries, service
from outpost.inventory.models import Asset, Site
from outpost.inventory.planner import Plan
from outpost.inventory.schemas import (
    AssetCreate,
    AssetDiff,
    AssetFilter,
    AssetOut,
    AssetReplace,
    AssetTypeOut,
    ChangeSetIn,
    ChangeSetQuery,
    ChangeSetResult,
    DeleteOptions,
    SiteCreate,
    SiteFilter,
    SiteOut,
    ViolationOut,
)
from outpost.web.context import actor, principal, transaction
from outpost.web.openapi import MergePatch, endpoint, if_match_revision
from outpost.web.pages import Paged, paged
from outpost.web.responses import with_etag

bp = Blueprint("inventory_api", __name__, url_prefix="/api/v1")

WRITE_ERRORS = {409: "Conflict", 422: "Validation failed"}


def site_out(site: Site, asset_count: int | None = None) -> dict[str, Any]:
    return (
        SiteOut.model_validate(site, from_attributes=True)
        .model_copy(update={"asset_count": asset_count})
        .model_dump(mode="json")
    )


def asset_out(asset: Asset) -> dict[str, Any]:
    return AssetOut.model_validate(asset, from_attributes=True).model_dump(mode="json")


# --- sites ------------------------------------------------------------------------------


@bp.get("/sites")
@endpoint(
    summary="List sites with their asset counts", tag="sites", query=SiteFilter, response=Paged
)
def list_sites(query: SiteFilter) -> Response:
    with transaction() as session:
        page = queries.list_sites(session, principal(), query)
        return jsonify(paged([site_out(s, n) for s, n in page.items], page.next_cursor))


@bp.post("/sites")
@endpoint(
    summary="Create a site",
    tag="sites",
    body=SiteCreate,
    response=SiteOut,
    status=201,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def create_site(body: SiteCreate) -> Response:
    with transaction() as session:
        site = service.create_site(session, actor(), body)
        return with_etag(site_out(site), site.revision, 201)


@bp.get("/sites/<site_id>")
@endpoint(summary="Get a site", tag="sites", response=SiteOut, etag=True)
def get_site(site_id: str) -> Response:
    with transaction() as session:
        site = service.get_site(session, principal(), site_id)
        return with_etag(site_out(site), site.revision)


@bp.patch("/sites/<site_id>")
@endpoint(
    summary="Change a site (JSON merge patch)",
    tag="sites",
    body=MergePatch,
    response=SiteOut,
    if_match=True,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def patch_site(site_id: str, body: MergePatch) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        site = service.update_site(session, actor(), site_id, body.root, if_revision=revision)
        return with_etag(site_out(site), site.revision)


@bp.put("/sites/<site_id>")
@endpoint(
    summary="Replace a site",
    tag="sites",
    body=SiteCreate,
    response=SiteOut,
    if_match=True,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def put_site(site_id: str, body: SiteCreate) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        site = service.update_site(
            session, actor(), site_id, body.model_dump(), if_revision=revision, replace_all=True
        )
        return with_etag(site_out(site), site.revision)


@bp.delete("/sites/<site_id>")
@endpoint(
    summary="Delete an empty site",
    tag="sites",
    status=204,
    if_match=True,
    extra_responses={409: "The site still has assets"},
)
def delete_site(site_id: str) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        service.delete_site(session, actor(), site_id, if_revision=revision)
    return Response(status=204)


# --- asset types ------------------------------------------------------------------------


@bp.get("/asset-types")
@endpoint(
    summary="List the asset types and their configuration schemas", tag="assets", response=Paged
)
def list_asset_types() -> Response:
    items = [
        AssetTypeOut(
            key=t.key,
            label=t.label,
            parent_types=sorted(t.parent_types),
            config_schema=dict(t.config_schema),
        ).model_dump(mode="json")
        for t in service.list_asset_types(principal())
    ]
    return jsonify(paged(items, None))


# --- assets -----------------------------------------------------------------------------


@bp.get("/assets")
@endpoint(summary="List assets", tag="assets", query=AssetFilter, response=Paged)
def list_assets(query: AssetFilter) -> Response:
    with transaction() as session:
        page = queries.list_assets(session, principal(), query)
        return jsonify(paged([asset_out(a) for a in page.items], page.next_cursor))


@bp.post("/assets")
@endpoint(
    summary="Create an asset (validated against every rule)",
    tag="assets",
    body=AssetCreate,
    response=AssetOut,
    status=201,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def create_asset(body: AssetCreate) -> Response:
    with transaction() as session:
        asset = service.create_asset(session, actor(), body)
        return with_etag(asset_out(asset), asset.revision, 201)


@bp.get("/assets/<asset_id>")
@endpoint(summary="Get an asset", tag="assets", response=AssetOut, etag=True)
def get_asset(asset_id: str) -> Response:
    with transaction() as session:
        asset = service.get_asset(session, principal(), asset_id)
        return with_etag(asset_out(asset), asset.revision)


@bp.patch("/assets/<asset_id>")
@endpoint(
    summary="Change an asset (JSON merge patch)",
    tag="assets",
    body=MergePatch,
    response=AssetOut,
    if_match=True,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def patch_asset(asset_id: str, body: MergePatch) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        asset = service.update_asset(session, actor(), asset_id, body.root, if_revision=revision)
        return with_etag(asset_out(asset), asset.revision)


@bp.put("/assets/<asset_id>")
@endpoint(
    summary="Replace an asset's editable fields",
    tag="assets",
    body=AssetReplace,
    response=AssetOut,
    if_match=True,
    etag=True,
    extra_responses=WRITE_ERRORS,
)
def put_asset(asset_id: str, body: AssetReplace) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        asset = service.replace_asset(session, actor(), asset_id, body, if_revision=revision)
        return with_etag(asset_out(asset), asset.revision)


@bp.delete("/assets/<asset_id>")
@endpoint(
    summary="Delete an asset (cascade=true to delete its subtree)",
    tag="assets",
    status=204,
    query=DeleteOptions,
    if_match=True,
    extra_responses={409: "The asset has children", 422: "Validation failed"},
)
def delete_asset(asset_id: str, query: DeleteOptions) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        service.delete_asset(
            session, actor(), asset_id, if_revision=revision, cascade=query.cascade
        )
    return Response(status=204)


# --- change sets ------------------------------------------------------------------------


def changeset_result(plan: Plan, *, dry_run: bool, applied: bool) -> dict[str, Any]:
    return ChangeSetResult(
        dry_run=dry_run,
        valid=plan.valid,
        applied=applied,
        summary=plan.summary(),
        changes=[
            AssetDiff(op=d.op, asset_id=d.asset_id, before=d.before, after=d.after)
            for d in plan.diffs
        ],
        affected=plan.affected,
        violations=[ViolationOut(**v.as_dict()) for v in plan.located_violations()],
    ).model_dump(mode="json")


@bp.post("/changesets")
@endpoint(
    summary="Plan (dry_run=true) or apply a set of operations atomically",
    tag="changesets",
    body=ChangeSetIn,
    query=ChangeSetQuery,
    response=ChangeSetResult,
    extra_responses=WRITE_ERRORS,
)
def post_changeset(body: ChangeSetIn, query: ChangeSetQuery) -> Response:
    with transaction() as session:
        outcome = service.run_changeset(session, actor(body.reason), body, dry_run=query.dry_run)
        return jsonify(
            changeset_result(outcome.plan, dry_run=query.dry_run, applied=outcome.applied)
        )
