"""Recompute every organization's hash chain and name the first broken event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from outpost.audit.chain import CHAINED_FIELDS, GENESIS_HASH, hash_values
from outpost.audit.models import AuditEvent, AuditHead
from outpost.clock import isoformat

_ORG, _SEQ, _OCCURRED = (CHAINED_FIELDS.index(name) for name in ("org_id", "seq", "occurred_at"))


@dataclass(frozen=True)
class ChainReport:
    org_id: str
    events: int
    broken_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Chain:
    """One organization's chain, checked event by event."""

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.expected_seq = 1
        self.prev = GENESIS_HASH
        self.count = 0
        self.broken_seq: int | None = None
        self.problem: str | None = None

    def check(self, prev_hash: str, digest: str, values: list[object]) -> None:
        self.count += 1
        if self.problem is not None:
            return
        seq = values[_SEQ]
        assert isinstance(seq, int)
        if seq != self.expected_seq:
            self._break(
                seq, f"expected event {self.expected_seq}, found {seq} (removed or reordered)"
            )
        elif prev_hash != self.prev:
            self._break(seq, "its previous-hash link does not match the event before it")
        elif hash_values(self.prev, values) != digest:
            self._break(seq, "its content does not match its hash (altered)")
        self.prev, self.expected_seq = digest, seq + 1

    def _break(self, seq: int, problem: str) -> None:
        self.broken_seq, self.problem = seq, problem

    def report(self, head: tuple[int, str] | None) -> ChainReport:
        if self.problem is None and head != (self.expected_seq - 1, self.prev):
            return ChainReport(
                self.org_id,
                self.count,
                self.expected_seq,
                "the chain's tip does not match its last event (events removed at the end)",
            )
        return ChainReport(self.org_id, self.count, self.broken_seq, self.problem)


def verify_chains(connection: Connection, batch: int = 20_000) -> list[ChainReport]:
    """Walk every event in (organization, seq) order; one report per organization."""
    heads = {h.org_id: (h.seq, h.hash) for h in connection.execute(select(AuditHead))}
    columns = [getattr(AuditEvent, name) for name in CHAINED_FIELDS]
    query = (
        select(AuditEvent.prev_hash, AuditEvent.hash, *columns)
        .order_by(AuditEvent.org_id, AuditEvent.seq)
        .execution_options(yield_per=batch, stream_results=True)
    )
    reports: list[ChainReport] = []
    chain: _Chain | None = None
    last_moment: datetime | None = None
    last_iso = ""
    for row in connection.execute(query):
        values = list(row[2:])
        moment = values[_OCCURRED]
        if moment != last_moment:  # events written together share their timestamp
            assert isinstance(moment, datetime)
            last_moment, last_iso = moment, isoformat(moment)
        values[_OCCURRED] = last_iso
        if chain is None or values[_ORG] != chain.org_id:
            if chain is not None:
                reports.append(chain.report(heads.get(chain.org_id)))
            chain = _Chain(str(values[_ORG]))
        chain.check(row[0], row[1], values)
    if chain is not None:
        reports.append(chain.report(heads.get(chain.org_id)))
    checked = {report.org_id for report in reports}
    for org_id, (seq, _) in sorted(heads.items()):
        if org_id not in checked and seq:
            reports.append(ChainReport(org_id, 0, 1, "all of its events are missing"))
    return reports
