"""Plan and apply inventory operations: the one path every asset write takes.

A plan locks the sites the operations touch, loads every asset on them, applies the
operations to an in-memory copy, and runs every rule over that proposed state. If
there are violations, nothing is written. Otherwise :func:`apply_plan` writes the
difference and its audit events in the caller's transaction.

Sites are locked in id order (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write
transactions already hold the database write lock), so two writers whose changes
are each valid alone but invalid together are checked one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from outpost import ids
from outpost.audit import service as audit
from outpost.audit.actions import Action
from outpost.clock import utcnow
from outpost.db import bulk_insert
from outpost.errors import PreconditionFailed
from outpost.identity.principal import Actor
from outpost.inventory.models import Asset, Site
from outpost.inventory.rules import check_all
from outpost.inventory.schemas import AssetFields, CreateOp, DeleteOp, MoveOp, UpdateOp
from outpost.inventory.state import AssetState, ProposedState, SiteState
from outpost.validation import Violation, field_violations

Op = CreateOp | UpdateOp | MoveOp | DeleteOp
EDITABLE = frozenset(AssetFields.model_fields)


@dataclass(frozen=True, slots=True)
class Diff:
    op: str
    asset_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class Plan:
    """The outcome of planning: the proposed state, its diff and its violations."""

    org_id: str
    sites: dict[str, SiteState]
    origin: dict[str, AssetState]
    revisions: dict[str, int]
    stamps: dict[str, tuple[datetime, datetime]]
    proposed: dict[str, AssetState]
    changes: dict[str, Diff] = field(default_factory=dict)  # by asset id, in write order
    violations: list[Violation] = field(default_factory=list)
    op_violations: list[tuple[int, Violation]] = field(default_factory=list)
    op_index: dict[str, int] = field(default_factory=dict)
    stale: list[tuple[str, int]] = field(default_factory=list)
    applied_at: datetime | None = None

    @property
    def diffs(self) -> list[Diff]:
        return list(self.changes.values())

    @property
    def valid(self) -> bool:
        return not self.violations and not self.op_violations and not self.stale

    @property
    def affected(self) -> list[str]:
        return sorted({d.asset_id for d in self.diffs})

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "move": 0, "delete": 0}
        for diff in self.changes.values():
            counts[diff.op] += 1
        return counts

    def every_violation(self) -> list[Violation]:
        """Every violation, its path relative to its operation or object (one-operation writes)."""
        return [v for _, v in self.op_violations] + self.violations

    def located_violations(self) -> list[Violation]:
        """Every violation, its path prefixed by its operation: the one that raised it, or
        for a rule's violation the first one that touched its object."""
        located = [_at(index, v) for index, v in self.op_violations]
        for v in self.violations:
            index = self.op_index.get(v.object_id or "")
            located.append(v if index is None else _at(index, v))
        return located


def _at(index: int, violation: Violation) -> Violation:
    path = f"operations[{index}]" + (f".{violation.path}" if violation.path else "")
    return replace(violation, path=path)


def snapshot(asset: AssetState, revision: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": asset.id,
        "site_id": asset.site_id,
        "type": asset.type,
        "parent_id": asset.parent_id,
        "name": asset.name,
        "serial": asset.serial,
        "tags": list(asset.tags),
        "config": dict(asset.config),
    }
    if revision is not None:
        data["revision"] = revision
    return data


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- planning ---------------------------------------------------------------------------


def plan(
    session: Session,
    org_id: str,
    operations: Sequence[Op],
    *,
    site_changes: Mapping[str, SiteState] | None = None,
) -> Plan:
    site_changes = site_changes or {}
    site_ids, asset_ids = _scope(operations)
    sites = _lock_sites(session, org_id, site_ids | set(site_changes), asset_ids)
    origin, revisions, stamps = _load_assets(session, org_id, sites)
    state = Plan(org_id, {**sites}, origin, revisions, stamps, dict(origin))
    state.sites.update(site_changes)
    refs: dict[str, str] = {}
    for index, op in enumerate(operations):
        _apply_op(state, index, op, refs)
    changed = frozenset(d.asset_id for d in state.changes.values() if d.after is not None)
    proposed = ProposedState(state.sites, state.proposed, changed)
    state.violations.extend(_introduced(check_all(proposed), state, sites))
    state.violations.extend(_check_deleted_parents(state))
    state.violations.extend(_check_serials(session, state, changed))
    return state


def _introduced(
    found: list[Violation], state: Plan, stored_sites: Mapping[str, SiteState]
) -> list[Violation]:
    """The violations this write introduces.

    Stored data is valid in normal operation, so the stored state is only checked
    when the proposed one has violations. If stored data already breaks a rule
    (imported before the rule existed, or written when the rule was looser), a
    write that leaves that violation exactly as it is (same values, so the same
    message) or removes it is not blocked by it; one that changes it must fix it.
    """
    if not found:
        return found
    stored = ProposedState(stored_sites, state.origin, frozenset())
    existing = {(v.code, v.message) for v in check_all(stored)}  # messages name both sides
    return [v for v in found if (v.code, v.message) not in existing]


def _scope(operations: Iterable[Op]) -> tuple[set[str], set[str]]:
    """The sites the operations name and the existing assets they name (targets, parents);
    the sites of those assets are in scope too."""
    site_ids: set[str] = set()
    asset_ids: set[str] = set()
    for op in operations:
        if isinstance(op, CreateOp):
            site_ids.add(op.site_id)
            asset_ids.update(filter(None, [op.parent_id]))
        elif isinstance(op, MoveOp):
            site_ids.update(filter(None, [op.site_id]))
            asset_ids.update(filter(None, [op.id, op.parent_id]))
        elif isinstance(op, UpdateOp):
            asset_ids.add(op.id)
            site_ids.update(v for v in [op.patch.get("site_id")] if isinstance(v, str))
            asset_ids.update(v for v in [op.patch.get("parent_id")] if isinstance(v, str))
        else:
            asset_ids.add(op.id)
    return site_ids, asset_ids


def _lock_sites(
    session: Session, org_id: str, site_ids: set[str], asset_ids: set[str]
) -> dict[str, SiteState]:
    """Lock the named sites and the sites of the named assets, in id order.

    The usual single-asset write names only assets: one query joins them to their
    sites and locks those. When sites are named too, the assets' sites are resolved
    first so that every lock is taken by one ordered query.
    """
    columns = (Site.id, Site.code, Site.grid_connection_kw)
    if asset_ids and not site_ids:
        query = (
            select(*columns)
            .join(Asset, Asset.site_id == Site.id)
            .where(Asset.org_id == org_id, Asset.id.in_(asset_ids))  # scoped by the assets
        )
    else:
        if asset_ids:
            site_ids = site_ids | set(
                session.scalars(
                    select(Asset.site_id).where(Asset.org_id == org_id, Asset.id.in_(asset_ids))
                )
            )
        query = select(*columns).where(Site.org_id == org_id, Site.id.in_(site_ids))
    query = query.order_by(Site.id)
    if session.info.get("lock_scopes", True):
        query = query.with_for_update(of=Site)
    return {r.id: SiteState(r.id, r.code, r.grid_connection_kw) for r in session.execute(query)}


def _load_assets(
    session: Session, org_id: str, sites: Mapping[str, SiteState]
) -> tuple[dict[str, AssetState], dict[str, int], dict[str, tuple[datetime, datetime]]]:
    origin: dict[str, AssetState] = {}
    revisions: dict[str, int] = {}
    stamps: dict[str, tuple[datetime, datetime]] = {}
    if not sites:
        return origin, revisions, stamps
    columns = (
        Asset.id,
        Asset.site_id,
        Asset.type,
        Asset.parent_id,
        Asset.name,
        Asset.serial,
        Asset.config,
        Asset.tags,
        Asset.revision,
        Asset.created_at,
        Asset.updated_at,
    )
    for chunk in _chunks(sorted(sites), 500):
        rows = session.execute(
            select(*columns).where(Asset.org_id == org_id, Asset.site_id.in_(chunk))
        )
        for r in rows:
            origin[r.id] = AssetState(
                r.id,
                r.site_id,
                r.type,
                r.parent_id,
                r.name,
                r.serial,
                r.config or {},
                tuple(r.tags or ()),
            )
            revisions[r.id] = r.revision
            stamps[r.id] = (r.created_at, r.updated_at)
    return origin, revisions, stamps


def _apply_op(state: Plan, index: int, op: Op, refs: dict[str, str]) -> None:
    if isinstance(op, CreateOp):
        _create(state, index, op, refs)
        return
    current = state.proposed.get(op.id)
    if current is None:
        state.op_violations.append(
            (index, Violation("asset.not_found", f"No asset {op.id} in this organization.", "id"))
        )
        return
    if op.if_revision is not None and state.revisions.get(op.id) != op.if_revision:
        state.stale.append((op.id, state.revisions.get(op.id, 0)))
        state.op_violations.append(
            (
                index,
                Violation(
                    "asset.revision_stale",
                    f"Asset {current.name} is at revision {state.revisions.get(op.id)}, "
                    f"not {op.if_revision}.",
                    "if_revision",
                    op.id,
                ),
            )
        )
        return
    state.op_index.setdefault(op.id, index)
    if isinstance(op, DeleteOp):
        _delete(state, op, current)
        return
    if isinstance(op, MoveOp):
        patch: dict[str, Any] = {"parent_id": _parent(op.parent_id, op.parent_ref, refs)}
        if op.site_id:
            patch["site_id"] = op.site_id
        _update(state, index, current, patch)
        return
    _update(state, index, current, op.patch)


def _parent(parent_id: str | None, parent_ref: str | None, refs: Mapping[str, str]) -> str | None:
    if parent_ref is not None:
        return refs.get(parent_ref, f"unknown-ref:{parent_ref}")
    return parent_id


def _create(state: Plan, index: int, op: CreateOp, refs: dict[str, str]) -> None:
    if op.site_id not in state.sites:
        message = f"No site {op.site_id} in this organization."
        state.op_violations.append((index, Violation("site.not_found", message, "site_id")))
        return
    if op.ref is not None and op.ref in refs:
        message = f"Reference {op.ref!r} is used twice."
        state.op_violations.append((index, Violation("changeset.ref_duplicate", message, "ref")))
        return
    asset_id = ids.new_id("ast")
    if op.ref is not None:
        refs[op.ref] = asset_id
    parent_id = _parent(op.parent_id, op.parent_ref, refs)
    asset = AssetState(
        asset_id, op.site_id, op.type, parent_id, op.name, op.serial, op.config, tuple(op.tags)
    )
    state.proposed[asset_id] = asset
    state.op_index[asset_id] = index
    state.changes[asset_id] = Diff("create", asset_id, None, snapshot(asset))


def _update(state: Plan, index: int, current: AssetState, patch: Mapping[str, Any]) -> None:
    def refuse(code: str, message: str, path: str) -> None:
        state.op_violations.append((index, Violation(code, message, path, current.id)))

    unknown = sorted(set(patch) - EDITABLE - {"type"})
    if unknown:
        refuse(
            "patch.field_not_editable", f"Fields {', '.join(unknown)} cannot be changed.", "patch"
        )
        return
    if "type" in patch and patch["type"] != current.type:
        refuse("asset.type_immutable", "An asset's type cannot be changed; replace it.", "type")
        return
    base = {k: v for k, v in snapshot(current).items() if k in EDITABLE}
    merged = merge_patch(base, dict(patch))
    merged.pop("type", None)
    try:
        fields = AssetFields.model_validate(merged)
    except ValidationError as exc:
        state.op_violations.extend((index, v) for v in field_violations(exc, current.id))
        return
    updated = replace(
        current,
        site_id=fields.site_id,
        parent_id=fields.parent_id,
        name=fields.name,
        serial=fields.serial,
        config=fields.config,
        tags=tuple(fields.tags),
    )
    if updated == current:
        return
    if fields.site_id != current.site_id and fields.site_id not in state.sites:
        refuse("site.not_found", f"No site {fields.site_id} in this organization.", "site_id")
        return
    moved = (updated.parent_id, updated.site_id) != (current.parent_id, current.site_id)
    _record(state, "move" if moved else "update", current, updated)
    if updated.site_id != current.site_id:
        for descendant in _descendants(state, current.id):
            _record(state, "move", descendant, replace(descendant, site_id=updated.site_id))


def _delete(state: Plan, op: DeleteOp, current: AssetState) -> None:
    doomed = [current]
    if op.cascade:
        doomed.extend(_descendants(state, current.id))
        for descendant in doomed[1:]:
            state.op_index.setdefault(descendant.id, state.op_index[current.id])
    for asset in reversed(doomed):
        del state.proposed[asset.id]
        state.changes.pop(asset.id, None)
        if asset.id in state.origin:
            before = snapshot(state.origin[asset.id], state.revisions[asset.id])
            state.changes[asset.id] = Diff("delete", asset.id, before, None)


def _record(state: Plan, op: str, current: AssetState, updated: AssetState) -> None:
    """Record ``updated`` as the asset's new state: one diff per asset, against its origin."""
    state.proposed[updated.id] = updated
    previous = state.changes.pop(updated.id, None)
    if previous is not None and previous.op == "create":
        state.changes[updated.id] = Diff("create", updated.id, None, snapshot(updated))
        return
    kind = "move" if op == "move" or (previous is not None and previous.op == "move") else op
    revision = state.revisions[updated.id]
    state.changes[updated.id] = Diff(
        kind,
        updated.id,
        snapshot(state.origin[updated.id], revision),
        snapshot(updated, revision + 1),
    )


def _descendants(state: Plan, asset_id: str) -> list[AssetState]:
    children: dict[str, list[AssetState]] = {}
    for asset in state.proposed.values():
        if asset.parent_id:
            children.setdefault(asset.parent_id, []).append(asset)
    found: list[AssetState] = []
    stack, seen = [asset_id], {asset_id}
    while stack:
        for child in children.get(stack.pop(), []):
            if child.id not in seen:
                seen.add(child.id)
                found.append(child)
                stack.append(child.id)
    return found


def _check_deleted_parents(state: Plan) -> Iterable[Violation]:
    """An asset whose parent is deleted by this write: refused unless cascaded."""
    deleted = {d.asset_id for d in state.changes.values() if d.op == "delete"}
    orphans: dict[str, list[str]] = {}
    for asset in state.proposed.values():
        if asset.parent_id in deleted:
            orphans.setdefault(asset.parent_id, []).append(asset.id)
    for parent_id, children in orphans.items():
        name = state.origin[parent_id].name
        yield Violation(
            "asset.has_children",
            f"{name} still has {len(children)} child asset(s); move or delete them first, "
            "or delete with cascade.",
            "",
            parent_id,
            tuple(sorted(children)),
        )


def _check_serials(session: Session, state: Plan, changed: frozenset[str]) -> Iterable[Violation]:
    """Serials are unique per organization: within the scope and against the rest of it."""
    by_serial: dict[str, list[str]] = {}
    for asset in state.proposed.values():
        by_serial.setdefault(asset.serial, []).append(asset.id)
    wanted = {
        state.proposed[i].serial: i
        for i in changed
        if i not in state.origin or state.origin[i].serial != state.proposed[i].serial
    }
    for serial, holders in by_serial.items():
        if len(holders) > 1 and serial in wanted:
            for holder in holders:
                if holder in changed:
                    others = tuple(h for h in holders if h != holder)
                    yield Violation(
                        "asset.serial_taken",
                        f"Serial {serial} is already used.",
                        "serial",
                        holder,
                        others,
                    )
    outside = [serial for serial in wanted if len(by_serial[serial]) == 1]
    for chunk in _chunks(outside, 500):
        rows = session.execute(
            select(Asset.id, Asset.serial).where(
                Asset.org_id == state.org_id,
                Asset.serial.in_(chunk),
                Asset.site_id.not_in(list(state.sites)),
            )
        )
        for row in rows:
            yield Violation(
                "asset.serial_taken",
                f"Serial {row.serial} is already used.",
                "serial",
                wanted[row.serial],
                (row.id,),
            )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- applying ---------------------------------------------------------------------------


def raise_if_stale(state: Plan) -> None:
    """For single-object writes: a stale revision is a 412 with the current object."""
    if state.stale:
        asset_id, revision = state.stale[0]
        raise PreconditionFailed(
            f"Asset {asset_id} has changed since you read it (now revision {revision}).",
            current=snapshot(state.origin[asset_id], revision),
            revision=revision,
        )


def apply_plan(session: Session, actor: Actor, state: Plan) -> None:
    """Write a valid plan and one audit event per changed asset, in this transaction."""
    now = state.applied_at = utcnow()
    diffs = state.diffs
    creates = [d for d in diffs if d.op == "create" and d.after is not None]
    if creates:
        depth = _depths(state.proposed)
        creates.sort(key=lambda d: depth[d.asset_id])
        bulk_insert(
            session,
            cast(Table, Asset.__table__),
            [
                {
                    **_columns(d.after),
                    "org_id": state.org_id,
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for d in creates
                if d.after is not None
            ],
        )
    updates = [d.after for d in diffs if d.op in {"update", "move"} and d.after is not None]
    if updates:
        session.execute(
            update(Asset),
            [
                {**_columns(after), "revision": after["revision"], "updated_at": now}
                for after in updates
            ],
        )
    deletes = [d.asset_id for d in diffs if d.op == "delete"]
    if deletes:
        old_depth = _depths(state.origin)
        deletes.sort(key=lambda asset_id: -old_depth[asset_id])
        for chunk in _chunks(deletes, 500):
            session.execute(delete(Asset).where(Asset.id.in_(chunk)))
    actions = {
        "create": Action.ASSET_CREATED,
        "update": Action.ASSET_UPDATED,
        "move": Action.ASSET_MOVED,
        "delete": Action.ASSET_DELETED,
    }
    audit.record(
        session,
        actor,
        [audit.Change(actions[d.op], "asset", d.asset_id, d.before, d.after) for d in diffs],
    )


def written_asset(state: Plan, asset_id: str) -> Asset:
    """The asset as an applied plan left it, without reading it back (a detached object)."""
    asset = state.proposed[asset_id]
    revision = state.revisions.get(asset_id, 0)
    created_at, updated_at = state.stamps.get(asset_id, (state.applied_at, state.applied_at))
    change = state.changes.get(asset_id)
    if change is not None and change.after is not None:
        revision, updated_at = revision + 1, state.applied_at
    return Asset(
        **_columns(snapshot(asset)),
        org_id=state.org_id,
        revision=revision,
        created_at=created_at,
        updated_at=updated_at,
    )


def _columns(after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: after[k]
        for k in ("id", "site_id", "type", "parent_id", "name", "serial", "tags", "config")
    }


def _depths(assets: Mapping[str, AssetState]) -> dict[str, int]:
    """Each asset's distance from the site root, so parents are written before children."""
    depth: dict[str, int] = {}

    def of(asset_id: str, guard: int = 0) -> int:
        if asset_id not in depth:
            asset = assets.get(asset_id)
            parent = asset.parent_id if asset else None
            depth[asset_id] = 0 if parent is None or guard > 64 else of(parent, guard + 1) + 1
        return depth[asset_id]

    for asset_id in assets:
        of(asset_id)
    return depth
