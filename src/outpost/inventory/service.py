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
from outpost.errors import Conflict, Forbidden, NotFound, RuleViolation, require_revision
from outpost.identity.authz import authorize, can, require_somewhere
from outpost.identity.principal import Actor, Principal, Scope
from outpost.identity.roles import Permission
from outpost.inventory import planner, scopes
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
    """A site the principal may see; another's, or one outside their scope, is NotFound."""
    site = session.scalar(select(Site).where(Site.id == site_id, Site.org_id == principal.org_id))
    if site is None or not scopes.can_see_site(session, principal, site.id):
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
    site = _locked_site(session, actor.principal, site_id)
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
    site = _locked_site(session, actor.principal, site_id)
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


def _locked_site(session: Session, principal: Principal, site_id: str) -> Site:
    """The site, locked for a write the principal may make (``site.write`` on it)."""
    site = session.scalar(
        select(Site).where(Site.id == site_id, Site.org_id == principal.org_id).with_for_update()
    )
    if site is None or not scopes.can_see_site(session, principal, site.id):
        raise NotFound(f"No site {site_id}.")
    authorize(principal, Permission.SITE_WRITE, scopes.site_scope(site.id))
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
    """The catalogue of asset types, for anyone who may read assets somewhere."""
    require_somewhere(principal, Permission.ASSET_READ)
    return list(CATALOGUE.values())


def get_asset(session: Session, principal: Principal, asset_id: str) -> Asset:
    """An asset the principal may read; another's, or one outside their scope, is NotFound."""
    asset = session.scalar(
        select(Asset).where(Asset.id == asset_id, Asset.org_id == principal.org_id)
    )
    if asset is None or not can(
        principal, Permission.ASSET_READ, scopes.asset_scope(session, principal, asset)
    ):
        raise NotFound(f"No asset {asset_id}.")
    return asset


def site_exists(session: Session, org_id: str, site_id: str) -> bool:
    found = session.scalar(select(Site.id).where(Site.id == site_id, Site.org_id == org_id))
    return found is not None


def readable_asset(session: Session, principal: Principal, asset_id: str | None) -> Asset | None:
    """The asset if the principal may read it, else None (a parent above their subtree)."""
    if asset_id is None:
        return None
    try:
        return get_asset(session, principal, asset_id)
    except NotFound:
        return None


def scope_of(
    session: Session,
    principal: Principal,
    *,
    site_id: str | None = None,
    asset_id: str | None = None,
) -> Scope:
    """Where a site or an asset of the principal's organization sits, for the decisions of
    domains that attach things to them. Decides nothing itself; a missing one is NotFound."""
    if asset_id is None:
        return scopes.site_scope(site_id) if site_id else Scope()
    asset = session.scalar(
        select(Asset).where(Asset.id == asset_id, Asset.org_id == principal.org_id)
    )
    if asset is None:
        raise NotFound(f"No asset {asset_id}.")
    return scopes.asset_scope(session, principal, asset)


def create_asset(session: Session, actor: Actor, data: AssetCreate) -> Asset:
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
    current = get_asset(session, actor.principal, asset_id).config
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
    _write_one(
        session, actor, DeleteOp(op="delete", id=asset_id, if_revision=if_revision, cascade=cascade)
    )


def _write_one(session: Session, actor: Actor, operation: planner.Op) -> planner.Plan:
    """Plan and apply one operation, with single-object HTTP semantics.

    A missing target (an unknown id, another tenant's, or one outside the principal's
    scope) is NotFound, a write the principal may not make is Forbidden, a stale revision
    is PreconditionFailed, remaining children are a Conflict listing them, and any other
    violation is a RuleViolation listing every one.
    """
    proposal = planner.plan(session, actor.org_id, [operation])
    missing = [
        v for _, v in proposal.op_violations if v.code.endswith(".not_found") and not v.object_id
    ]
    if missing:
        raise NotFound(missing[0].message)
    hidden = _authorize_plan(actor.principal, proposal)
    if hidden:
        raise NotFound(hidden[0].message)
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


def _authorize_plan(principal: Principal, proposal: planner.Plan) -> list[Violation]:
    """Every planned change needs its permissions where the asset is and where it goes.

    Returns an ``asset.not_found`` violation for each asset that is, or would be, out of
    the principal's sight (they cannot read there): such an asset is answered like a
    missing one. Raises Forbidden, naming each offending asset, for a change the
    principal can see but may not make.
    """
    hidden: list[Violation] = []
    refused: list[Violation] = []
    for diff in proposal.diffs:
        needed = _needed(diff)
        for states in (proposal.origin, proposal.proposed):
            if diff.asset_id not in states:
                continue
            scope = scopes.planned_scope(states, diff.asset_id)
            if not can(principal, Permission.ASSET_READ, scope):
                hidden.append(_out_of_sight(proposal, diff.asset_id, states is proposal.origin))
                break
            refused += [
                Violation(
                    "permission.denied",
                    f"You do not hold {permission} on this asset's scope.",
                    "",
                    diff.asset_id,
                )
                for permission in needed
                if not can(principal, permission, scope)
            ]
    if refused and not hidden:
        unique = list(dict.fromkeys(refused))
        raise Forbidden(unique[0].message, unique)
    return list(dict.fromkeys(hidden))


def _out_of_sight(proposal: planner.Plan, asset_id: str, where_it_is: bool) -> Violation:
    """The asset itself is out of sight (``where_it_is``), or the place it would go."""
    index = proposal.op_index.get(asset_id)
    path = "id" if where_it_is else "parent_id"
    message = (
        f"No asset {asset_id} in this organization."
        if where_it_is
        else "No such site or parent in this organization."
    )
    return Violation(
        "asset.not_found", message, path if index is None else f"operations[{index}].{path}"
    )


def _needed(diff: planner.Diff) -> list[Permission]:
    """A create or delete needs ``asset.write``; an update needs ``config.write`` for its
    config and ``asset.write`` for anything else it changes."""
    if diff.before is None or diff.after is None:
        return [Permission.ASSET_WRITE]
    changed = {
        key
        for key in diff.before.keys() | diff.after.keys()
        if key not in {"revision", "updated_at"} and diff.before.get(key) != diff.after.get(key)
    }
    needed = []
    if "config" in changed:
        needed.append(Permission.CONFIG_WRITE)
    if changed - {"config"}:
        needed.append(Permission.ASSET_WRITE)
    return needed


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
    proposal = planner.plan(session, actor.org_id, changeset.operations)
    hidden = _authorize_plan(actor.principal, proposal)
    if hidden:  # out of sight: reported like a missing asset, and nothing else is shown
        raise RuleViolation(hidden)
    if dry_run:
        return ChangeSetOutcome(proposal, applied=False)
    if not proposal.valid:
        raise RuleViolation(proposal.located_violations())
    planner.apply_plan(session, actor, proposal)
    return ChangeSetOutcome(proposal, applied=True)
