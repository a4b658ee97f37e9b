"""Inventory operations. Each authorizes, validates the proposed state, writes and audits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.errors import Conflict, NotFound, RuleViolation, require_revision
from outpost.identity.authz import authorize
from outpost.identity.principal import Actor, Principal
from outpost.identity.roles import Permission
from outpost.inventory import planner
from outpost.inventory.catalogue import CATALOGUE, AssetType
from outpost.inventory.models import Asset, Site
from outpost.inventory.schemas import (
    AssetCreate,
    AssetReplace,
    ChangeSetIn,
    CreateOp,
    DeleteOp,
    SiteCreate,
    SiteFields,
    UpdateOp,
)
from outpost.inventory.state import SiteState
from outpost.validation import Violation, field_violations

# --- sites ------------------------------------------------------------------------------


def get_site(session: Session, principal: Principal, site_id: str) -> Site:
    authorize(principal, Permission.SITE_READ)
    site = session.scalar(select(Site).where(Site.id == site_id, Site.org_id == principal.org_id))
    if site is None:
        raise NotFound(f"No site {site_id}.")
    return site


def create_site(session: Session, actor: Actor, data: SiteCreate) -> Site:
    return create_sites(session, actor, [data])[0]


def create_sites(session: Session, actor: Actor, batch: Sequence[SiteCreate]) -> list[Site]:
    """Create sites in one go (the demo seed, bulk onboarding): one check, one audit append."""
    authorize(actor.principal, Permission.SITE_WRITE)
    _check_site_codes(session, actor.org_id, [(data.code, None) for data in batch])
    now = utcnow()
    sites = [
        Site(
            id=ids.new_id("sit"),
            org_id=actor.org_id,
            revision=1,
            created_at=now,
            updated_at=now,
            **data.model_dump(),
        )
        for data in batch
    ]
    session.add_all(sites)
    session.flush()
    audit.record(
        session,
        actor,
        [
            audit.Change(Action.SITE_CREATED, "site", site.id, None, site.audit_snapshot())
            for site in sites
        ],
    )
    return sites


def update_site(
    session: Session,
    actor: Actor,
    site_id: str,
    changes: dict[str, Any],
    *,
    if_revision: int,
    replace_all: bool = False,
) -> Site:
    """Merge-patch (or replace) a site; its assets' rules are checked against the new values."""
    authorize(actor.principal, Permission.SITE_WRITE)
    site = _locked_site(session, actor.org_id, site_id)
    require_revision(site.revision, if_revision, site.audit_snapshot(), f"Site {site.code}")
    current = {k: v for k, v in site.audit_snapshot().items() if k in SiteFields.model_fields}
    merged = changes if replace_all else planner.merge_patch(current, changes)
    try:
        fields = SiteFields.model_validate(merged)
    except ValidationError as exc:
        raise RuleViolation(field_violations(exc, site.id)) from exc
    _check_site_codes(session, actor.org_id, [(fields.code, site.id)])
    proposal = planner.plan(
        session,
        actor.org_id,
        [],
        site_changes={site.id: SiteState(site.id, fields.code, fields.grid_connection_kw)},
    )
    if not proposal.valid:
        raise RuleViolation(proposal.every_violation())
    values = fields.model_dump()
    if all(getattr(site, key) == value for key, value in values.items()):
        return site
    with audit.tracked(session, actor, Action.SITE_UPDATED, site):
        for key, value in values.items():
            setattr(site, key, value)
        site.revision += 1
        site.updated_at = utcnow()
    return site


def delete_site(session: Session, actor: Actor, site_id: str, *, if_revision: int) -> None:
    authorize(actor.principal, Permission.SITE_WRITE)
    site = _locked_site(session, actor.org_id, site_id)
    require_revision(site.revision, if_revision, site.audit_snapshot(), f"Site {site.code}")
    remaining = session.scalar(select(func.count()).where(Asset.site_id == site.id)) or 0
    if remaining:
        raise Conflict(
            f"Site {site.code} still has {remaining} assets; delete them first.",
            [Violation("site.has_assets", f"{remaining} assets remain on the site.", "", site.id)],
        )
    with audit.tracked(session, actor, Action.SITE_DELETED, site) as track:
        session.delete(site)
        track.deleted = True


def _locked_site(session: Session, org_id: str, site_id: str) -> Site:
    site = session.scalar(
        select(Site).where(Site.id == site_id, Site.org_id == org_id).with_for_update()
    )
    if site is None:
        raise NotFound(f"No site {site_id}.")
    return site


def _check_site_codes(
    session: Session, org_id: str, wanted: Sequence[tuple[str, str | None]]
) -> None:
    """Site codes are unique per organization: ``wanted`` pairs a code with the site that
    will hold it (None for a new one). Every clash, in the store or within ``wanted``, is listed."""
    codes = [code for code, _ in wanted]
    holders = dict(
        session.execute(
            select(Site.code, Site.id).where(Site.org_id == org_id, Site.code.in_(codes))
        ).all()
    )
    repeated = {code for code, count in Counter(codes).items() if count > 1}
    problems = [
        Violation(
            "site.code_taken",
            f"Site code {code} is already used.",
            "code",
            own_id,
            (holders[code],) if code in holders else (),
        )
        for code, own_id in wanted
        if holders.get(code, own_id) != own_id or code in repeated
    ]
    if problems:
        raise RuleViolation(problems)


# --- assets -----------------------------------------------------------------------------


def list_asset_types(principal: Principal) -> list[AssetType]:
    """The catalogue of asset types, for anyone who may read assets."""
    authorize(principal, Permission.ASSET_READ)
    return list(CATALOGUE.values())


def get_asset(session: Session, principal: Principal, asset_id: str) -> Asset:
    authorize(principal, Permission.ASSET_READ)
    asset = session.scalar(
        select(Asset).where(Asset.id == asset_id, Asset.org_id == principal.org_id)
    )
    if asset is None:
        raise NotFound(f"No asset {asset_id}.")
    return asset


def create_asset(session: Session, actor: Actor, data: AssetCreate) -> Asset:
    authorize(actor.principal, Permission.ASSET_WRITE)
    proposal = _write_one(session, actor, CreateOp(op="create", **data.model_dump()))
    return planner.written_asset(proposal, proposal.diffs[0].asset_id)


def update_asset(
    session: Session,
    actor: Actor,
    asset_id: str,
    patch: dict[str, Any],
    *,
    if_revision: int,
) -> Asset:
    """Apply a JSON merge patch to one asset."""
    needed = Permission.CONFIG_WRITE if "config" in patch else Permission.ASSET_WRITE
    authorize(actor.principal, needed)
    proposal = _write_one(
        session, actor, UpdateOp(op="update", id=asset_id, if_revision=if_revision, patch=patch)
    )
    return planner.written_asset(proposal, asset_id)


def replace_asset(
    session: Session,
    actor: Actor,
    asset_id: str,
    data: AssetReplace,
    *,
    if_revision: int,
) -> Asset:
    """PUT: every editable field is replaced; the config is taken whole, not merged."""
    authorize(actor.principal, Permission.CONFIG_WRITE)
    current = session.scalar(
        select(Asset.config).where(Asset.id == asset_id, Asset.org_id == actor.org_id)
    )
    if current is None:
        raise NotFound(f"No asset {asset_id}.")
    patch = data.model_dump(exclude={"type"})
    patch["config"] = _replacement_patch(current, data.config)
    if data.type is not None:
        patch["type"] = data.type
    proposal = _write_one(
        session, actor, UpdateOp(op="update", id=asset_id, if_revision=if_revision, patch=patch)
    )
    return planner.written_asset(proposal, asset_id)


def _replacement_patch(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``current`` into exactly ``wanted``."""
    patch: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(current.get(key), dict):
            patch[key] = _replacement_patch(current[key], value)
        else:
            patch[key] = value
    return patch


def delete_asset(
    session: Session,
    actor: Actor,
    asset_id: str,
    *,
    if_revision: int,
    cascade: bool = False,
) -> None:
    authorize(actor.principal, Permission.ASSET_WRITE)
    _write_one(
        session, actor, DeleteOp(op="delete", id=asset_id, if_revision=if_revision, cascade=cascade)
    )


def _write_one(session: Session, actor: Actor, operation: planner.Op) -> planner.Plan:
    """Plan and apply one operation, with single-object HTTP semantics.

    A missing target (an unknown id, or another tenant's) is NotFound, a stale revision
    is PreconditionFailed, remaining children are a Conflict listing them, and any other
    violation is a RuleViolation listing every one.
    """
    proposal = planner.plan(session, actor.org_id, [operation])
    missing = [
        v for _, v in proposal.op_violations if v.code.endswith(".not_found") and not v.object_id
    ]
    if missing:
        raise NotFound(missing[0].message)
    planner.raise_if_stale(proposal)
    dependents = [v for v in proposal.violations if v.code == "asset.has_children"]
    if dependents:
        raise Conflict(
            "The asset has child assets; move them, or delete with cascade=true.", dependents
        )
    if not proposal.valid:
        raise RuleViolation(proposal.every_violation())
    planner.apply_plan(session, actor, proposal)
    return proposal


# --- change sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeSetOutcome:
    plan: planner.Plan
    applied: bool


def run_changeset(
    session: Session, actor: Actor, changeset: ChangeSetIn, *, dry_run: bool
) -> ChangeSetOutcome:
    """Plan a change set as a whole; apply it only if the final state is valid.

    A dry run returns the plan with its violations and writes nothing. A real run
    with violations raises :class:`RuleViolation` listing every one.
    """
    needs_config = any(op.op == "update" and "config" in op.patch for op in changeset.operations)
    authorize(actor.principal, Permission.ASSET_WRITE)
    if needs_config:
        authorize(actor.principal, Permission.CONFIG_WRITE)
    proposal = planner.plan(session, actor.org_id, changeset.operations)
    if dry_run:
        return ChangeSetOutcome(proposal, applied=False)
    if not proposal.valid:
        raise RuleViolation(proposal.located_violations())
    planner.apply_plan(session, actor, proposal)
    return ChangeSetOutcome(proposal, applied=True)
