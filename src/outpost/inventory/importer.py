"""Bulk import of assets from CSV, through the change-set path.

Columns: ``site_code, type, name, serial, parent_serial, tags, config``. ``tags`` is
``;``-separated; ``config`` is a JSON object. A parent is named by serial: an asset
earlier in the same file, or one already in the inventory. Every row becomes a
create operation of one change set, validated as a whole; the report names the
CSV line of each problem.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost.errors import BadRequest, RuleViolation
from outpost.identity.principal import Actor
from outpost.inventory import service
from outpost.inventory.models import Asset, Site
from outpost.inventory.schemas import ChangeSetIn, CreateOp
from outpost.validation import Violation, field_violations

COLUMNS = ("site_code", "type", "name", "serial", "parent_serial", "tags", "config")
MAX_ROWS = 30_000


@dataclass
class ImportReport:
    rows: int
    applied: bool
    problems: dict[int, list[Violation]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        verdict = "applied" if self.applied else ("valid (dry run)" if self.valid else "refused")
        out = [f"{self.rows} rows: {verdict}"]
        for line, violations in sorted(self.problems.items()):
            for v in violations:
                where = f"line {line}" if line else "file"
                out.append(f"{where}: [{v.code}] {v.path}: {v.message}")
        return out


def parse_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c for c in ("site_code", "type", "name", "serial") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise BadRequest(f"The CSV lacks the columns: {', '.join(missing)}.")
    rows = list(reader)
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"At most {MAX_ROWS} rows per import.")
    if not rows:
        raise BadRequest("The CSV has no rows.")
    return rows


def import_csv(session: Session, actor: Actor, text: str, *, apply: bool) -> ImportReport:
    rows = parse_rows(text)
    problems: dict[int, list[Violation]] = {}
    sites: dict[str, str] = {
        code: site_id
        for code, site_id in session.execute(
            select(Site.code, Site.id).where(Site.org_id == actor.org_id)
        )
    }
    in_file = {row.get("serial", "").strip() for row in rows}
    parents_wanted = {row.get("parent_serial", "").strip() for row in rows} - in_file - {""}
    known: dict[str, str] = {
        serial: asset_id
        for serial, asset_id in session.execute(
            select(Asset.serial, Asset.id).where(
                Asset.org_id == actor.org_id, Asset.serial.in_(parents_wanted)
            )
        )
    }
    operations: list[CreateOp] = []
    lines: list[int] = []
    for number, row in enumerate(rows, start=2):
        op = _operation(row, sites, known, in_file, problems.setdefault(number, []))
        if op is not None:
            operations.append(op)
            lines.append(number)
    problems = {line: found for line, found in problems.items() if found}
    if operations:
        try:
            outcome = service.run_changeset(
                session,
                actor,
                ChangeSetIn(operations=operations),
                dry_run=not apply or bool(problems),
            )
        except RuleViolation as refused:
            violations = refused.violations
        else:
            violations = outcome.plan.located_violations()
            if outcome.applied:
                return ImportReport(len(rows), True)
        for violation in violations:
            line, path = _locate(violation.path, lines)
            problems.setdefault(line, []).append(replace(violation, path=path))
    return ImportReport(len(rows), False, problems)


def _operation(
    row: dict[str, str],
    sites: dict[str, str],
    known: dict[str, str],
    in_file: set[str],
    problems: list[Violation],
) -> CreateOp | None:
    site_id = sites.get((row.get("site_code") or "").strip())
    if site_id is None:
        problems.append(
            Violation("site.not_found", f"No site with code {row.get('site_code')!r}.", "site_code")
        )
        return None
    config: Any = {}
    if (row.get("config") or "").strip():
        try:
            config = json.loads(row["config"])
        except json.JSONDecodeError as exc:
            problems.append(
                Violation("csv.config_invalid", f"config is not JSON: {exc.msg}", "config")
            )
            return None
    parent = (row.get("parent_serial") or "").strip()
    serial = (row.get("serial") or "").strip()
    data: dict[str, Any] = {
        "op": "create",
        "ref": serial or None,
        "site_id": site_id,
        "type": row.get("type"),
        "name": row.get("name"),
        "serial": serial,
        "config": config,
        "tags": [t.strip() for t in (row.get("tags") or "").split(";") if t.strip()],
    }
    if parent in in_file:
        data["parent_ref"] = parent
    elif parent:
        if parent not in known:
            problems.append(
                Violation("parent.missing", f"No asset with serial {parent!r}.", "parent_serial")
            )
            return None
        data["parent_id"] = known[parent]
    try:
        return CreateOp.model_validate(data)
    except ValidationError as exc:
        problems.extend(field_violations(exc))
        return None


def _locate(path: str, lines: list[int]) -> tuple[int, str]:
    """``operations[i].config.x`` → (the CSV line of operation i, ``config.x``); 0 is the file."""
    if not path.startswith("operations["):
        return 0, path
    end = path.index("]")
    return lines[int(path[len("operations[") : end])], path[end + 1 :].lstrip(".")
