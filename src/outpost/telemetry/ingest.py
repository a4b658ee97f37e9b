"""The one ingestion pipeline behind JSON, line protocol and MQTT.

``ingest`` resolves the assets a batch names, checks that the sender may write for
every one of them (a 403 names the offenders and nothing of the batch is stored),
validates each value against its asset type's declared metrics, and writes the
points to the time-series store. It returns only once the store has made them
durable, so the caller's acknowledgement (HTTP 2xx, MQTT PUBACK) comes after.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from outpost.clock import utcnow
from outpost.connectivity.credentials import Device
from outpost.errors import Forbidden, PayloadTooLarge, RuleViolation, ServiceUnavailable
from outpost.identity.authz import Reach, reach
from outpost.identity.models import Organization
from outpost.identity.principal import Principal
from outpost.identity.roles import Permission
from outpost.inventory import scopes
from outpost.inventory.models import Asset
from outpost.telemetry.metrics import METRICS, Metric
from outpost.telemetry.store import (
    NS_PER_SECOND,
    Point,
    StoreOverloaded,
    StoreUnavailable,
    TelemetryStore,
    to_ns,
)
from outpost.validation import Violation

#: How far ahead of the server's clock a point may be stamped.
FUTURE_TOLERANCE_NS: Final = 10 * 60 * NS_PER_SECOND
DAY_NS: Final = 86_400 * NS_PER_SECOND
#: At most this many violations are listed in one refusal (the count is in the detail).
LISTED_VIOLATIONS: Final = 100
_LOOKUP_CHUNK: Final = 2_000
#: How long a resolved asset reference is trusted (a deleted asset or a serial given to
#: another asset is seen within this delay), and how many are kept per process.
DIRECTORY_TTL_S: Final = 30.0
DIRECTORY_MAX: Final = 500_000
_DECLARED: Final[dict[tuple[str, str], Metric]] = {
    (asset_type, metric.name): metric
    for asset_type, metrics in METRICS.items()
    for metric in metrics
}

Sender = Principal | Device


class Sample(NamedTuple):
    """One value as a client sent it, before validation (a tuple: cheap to make)."""

    asset: str  # the asset's id or serial
    metric: str
    value: object
    time_ns: int | None  # None: the server's receive time
    where: str  # where it was in the request: "line 5", "points[3].values.ac_power_kw"


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    rejected: tuple[Violation, ...] = ()


@dataclass(frozen=True, slots=True)
class _Target:
    asset_id: str
    asset_type: str


def ingest(
    session: Session,
    store: TelemetryStore,
    sender: Sender,
    samples: Sequence[Sample],
    *,
    partial: bool = False,
    max_points: int = 50_000,
) -> IngestResult:
    """Validate and store ``samples`` for ``sender``.

    Refusals: more than ``max_points`` → PayloadTooLarge; an asset the sender may not
    write for → Forbidden (nothing stored). Invalid values → RuleViolation listing them
    (nothing stored), unless ``partial``: then the valid points are stored and the
    invalid ones returned, as InfluxDB does for line protocol. An overloaded or
    unreachable store → ServiceUnavailable with a retry delay (nothing acknowledged).
    """
    if len(samples) > max_points:
        raise PayloadTooLarge(
            f"A batch holds at most {max_points:,} values; this one has {len(samples):,}. Split it."
        )
    targets = _DIRECTORY.resolve(session, sender.org_id, {sample.asset for sample in samples})
    if isinstance(sender, Principal):
        targets = _visible(session, sender, targets)
    _authorize(session, sender, targets)
    now_ns = to_ns(utcnow())
    horizon_ns = now_ns - _raw_days(session, sender.org_id) * DAY_NS
    points, violations = _validate(samples, targets, sender.org_id, now_ns, horizon_ns)
    if violations and not partial:
        raise RuleViolation(_listed(violations), _refusal(violations, len(samples)))
    if points:
        _write(store, points)
    return IngestResult(len(points), tuple(violations))


_RAW_DAYS: dict[str, tuple[float, int]] = {}


def _raw_days(session: Session, org_id: str) -> int:
    """The organization's raw retention in days (read at most every ``DIRECTORY_TTL_S``)."""
    now = time.monotonic()
    cached = _RAW_DAYS.get(org_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    days = session.scalar(select(Organization.telemetry_raw_days).where(Organization.id == org_id))
    found = int(days or 30)
    _RAW_DAYS[org_id] = (now + DIRECTORY_TTL_S, found)
    return found


class _Directory:
    """Asset references (id or serial) → asset, per organization, trusted for
    ``DIRECTORY_TTL_S``, so a fleet's steady stream does not look every asset up on every
    batch. Only the naming is cached: who may write for an asset is decided afresh."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[float, _Target]] = {}

    def resolve(self, session: Session, org_id: str, refs: Iterable[str]) -> dict[str, _Target]:
        now = time.monotonic()
        found: dict[str, _Target] = {}
        missing: list[str] = []
        entries = self._entries
        for ref in refs:
            hit = entries.get((org_id, ref))
            if hit is not None and hit[0] > now:
                found[ref] = hit[1]
            else:
                missing.append(ref)
        if missing:
            looked_up = _lookup(session, org_id, missing)
            if len(entries) + len(looked_up) > DIRECTORY_MAX:
                entries.clear()
            expires = now + DIRECTORY_TTL_S
            for ref, target in looked_up.items():
                entries[(org_id, ref)] = (expires, target)
            found.update(looked_up)
        return found


def _lookup(session: Session, org_id: str, refs: list[str]) -> dict[str, _Target]:
    """Each reference the organization knows → its asset: by id, then by serial."""
    connection = session.connection()
    found: dict[str, _Target] = {}
    for column in (Asset.id, Asset.serial):
        wanted = [ref for ref in refs if ref not in found]
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            rows = connection.execute(
                select(column, Asset.id, Asset.type).where(
                    Asset.org_id == org_id, column.in_(chunk)
                )
            )
            for ref, asset_id, asset_type in rows:
                found[ref] = _Target(asset_id, asset_type)
    return found


_DIRECTORY = _Directory()


def _visible(
    session: Session, principal: Principal, targets: dict[str, _Target]
) -> dict[str, _Target]:
    """The assets the user may read or write telemetry for; the others stay unknown,
    never confirmed to exist."""
    readable = reach(principal, Permission.ASSET_READ)
    writable = reach(principal, Permission.TELEMETRY_WRITE)
    if readable.everywhere or writable.everywhere:
        return targets
    asset_ids = sorted({target.asset_id for target in targets.values()})
    visible = _within(session, asset_ids, readable) | _within(session, asset_ids, writable)
    return {ref: target for ref, target in targets.items() if target.asset_id in visible}


def _within(session: Session, asset_ids: list[str], where: Reach) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(asset_ids), _LOOKUP_CHUNK):
        chunk = asset_ids[start : start + _LOOKUP_CHUNK]
        found.update(
            session.scalars(
                select(Asset.id).where(Asset.id.in_(chunk), scopes.assets_within(where))
            )
        )
    return found


def _authorize(session: Session, sender: Sender, targets: dict[str, _Target]) -> None:
    """Every named asset must be the sender's to write for; else 403 naming them."""
    asset_ids = sorted({target.asset_id for target in targets.values()})
    if isinstance(sender, Device):
        allowed = _device_reach(session, sender, asset_ids)
    else:
        allowed = _principal_reach(session, sender, asset_ids)
    refused = [asset_id for asset_id in asset_ids if asset_id not in allowed]
    if not refused:
        return
    who = f"Device {sender.asset_id}" if isinstance(sender, Device) else "You"
    raise Forbidden(
        f"{who} may not write telemetry for {len(refused)} asset(s): "
        f"{', '.join(refused[:10])}{' …' if len(refused) > 10 else ''}. Nothing was stored.",
        [
            Violation(
                "telemetry.asset_forbidden",
                f"Not allowed to write telemetry for asset {asset_id}.",
                object_id=asset_id,
            )
            for asset_id in refused[:LISTED_VIOLATIONS]
        ],
    )


def _device_reach(session: Session, device: Device, asset_ids: list[str]) -> set[str]:
    """A device writes for itself; a gateway also for the assets below it."""
    if not device.forwards or asset_ids == [device.asset_id]:
        return {device.asset_id}
    return set(session.scalars(select(Asset.id).where(scopes.subtree_ids(device.asset_id))))


def _principal_reach(session: Session, principal: Principal, asset_ids: list[str]) -> set[str]:
    """The assets where the user (or their token) holds ``telemetry.write``."""
    writable = reach(principal, Permission.TELEMETRY_WRITE)
    if writable.everywhere:
        return set(asset_ids)
    return _within(session, asset_ids, writable)


def _validate(
    samples: Sequence[Sample],
    targets: dict[str, _Target],
    org_id: str,
    now_ns: int,
    horizon_ns: int,
) -> tuple[list[Point], list[Violation]]:
    points: list[Point] = []
    violations: list[Violation] = []
    latest_ns = now_ns + FUTURE_TOLERANCE_NS
    for sample in samples:
        target = targets.get(sample.asset)
        if target is None:
            violations.append(
                Violation(
                    "telemetry.unknown_asset",
                    f"No asset {sample.asset!r} (by id or serial) in this organization.",
                    sample.where,
                )
            )
            continue
        metric = _DECLARED.get((target.asset_type, sample.metric))
        if metric is None:
            violations.append(_undeclared(sample, target))
            continue
        value = _value_of(sample.value, metric)
        if isinstance(value, Violation):
            violations.append(_at(value, sample, target))
            continue
        time_ns = now_ns if sample.time_ns is None else sample.time_ns
        if time_ns > latest_ns:
            violations.append(
                Violation(
                    "telemetry.in_future",
                    "The time is more than 10 minutes ahead of the server's clock.",
                    sample.where,
                    target.asset_id,
                )
            )
        elif time_ns < horizon_ns:
            violations.append(
                Violation(
                    "telemetry.before_retention",
                    "The time is older than the organization keeps raw points.",
                    sample.where,
                    target.asset_id,
                )
            )
        else:
            points.append(Point(org_id, target.asset_id, sample.metric, time_ns, value))
    return points, violations


def _value_of(value: object, metric: Metric) -> float | Violation:
    """The value as stored (a float), or why it is refused."""
    kind = type(value)
    if metric.value_type == "bool":
        if kind is bool:
            return 1.0 if value else 0.0
        return Violation("telemetry.wrong_type", f"{metric.name} takes true or false.")
    if kind is bool or kind not in (int, float):
        return Violation("telemetry.wrong_type", f"{metric.name} takes a number.")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        return Violation("telemetry.not_finite", f"{metric.name} must be a finite number.")
    if metric.value_type == "int" and not number.is_integer():
        return Violation("telemetry.wrong_type", f"{metric.name} takes a whole number.")
    if not metric.minimum <= number <= metric.maximum:
        return Violation(
            "telemetry.out_of_range",
            f"{metric.name} must be between {metric.minimum:g} and {metric.maximum:g}"
            f"{' ' + metric.unit if metric.unit else ''}; got {number:g}.",
        )
    return number


def _at(violation: Violation, sample: Sample, target: _Target) -> Violation:
    return Violation(violation.code, violation.message, sample.where, target.asset_id)


def _undeclared(sample: Sample, target: _Target) -> Violation:
    declared = ", ".join(m.name for m in METRICS.get(target.asset_type, ())) or "none"
    return Violation(
        "telemetry.unknown_metric",
        f"A {target.asset_type} does not declare the metric {sample.metric!r} "
        f"(declared: {declared}).",
        sample.where,
        target.asset_id,
    )


def _listed(violations: list[Violation]) -> list[Violation]:
    return violations[:LISTED_VIOLATIONS]


def _refusal(violations: list[Violation], total: int) -> str:
    shown = min(len(violations), LISTED_VIOLATIONS)
    return (
        f"{len(violations):,} of {total:,} values are invalid (the first {shown} are listed); "
        "nothing was stored."
    )


def _write(store: TelemetryStore, points: list[Point]) -> None:
    try:
        store.write(points)
    except StoreOverloaded as exc:
        raise ServiceUnavailable(
            f"Telemetry storage is busy: {exc}. Nothing was stored; send the batch again.",
            exc.retry_after,
        ) from exc
    except StoreUnavailable as exc:
        raise ServiceUnavailable(
            f"Telemetry storage is unavailable: {exc}. Nothing was stored; send it again.",
            exc.retry_after,
        ) from exc
