"""The one ingestion pipeline behind JSON, line protocol and MQTT.

``ingest`` resolves the assets a batch names, checks that the sender may write for
every one of them (a 403 names the offenders and nothing of the batch is stored),
validates each value against its asset type's declared metrics, and writes the
points to the time-series store. It returns only once the store has made them
durable, so the caller's acknowledgement (HTTP 2xx, MQTT PUBACK) comes after.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import or_, select
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
)
from outpost.validation import Violation

#: How far ahead of the server's clock a point may be stamped.
FUTURE_TOLERANCE_NS: Final = 10 * 60 * NS_PER_SECOND
DAY_NS: Final = 86_400 * NS_PER_SECOND
#: At most this many violations are listed in one refusal (the count is in the detail).
LISTED_VIOLATIONS: Final = 100
_LOOKUP_CHUNK: Final = 2_000
_DECLARED: Final[dict[tuple[str, str], Metric]] = {
    (asset_type, metric.name): metric
    for asset_type, metrics in METRICS.items()
    for metric in metrics
}

Sender = Principal | Device


@dataclass(frozen=True, slots=True)
class Sample:
    """One value as a client sent it, before validation."""

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
    targets = _resolve(session, sender.org_id, {sample.asset for sample in samples})
    if isinstance(sender, Principal):
        targets = _readable(session, sender, targets)
    _authorize(session, sender, targets)
    now_ns = _now_ns()
    horizon_ns = now_ns - _raw_days(session, sender.org_id) * DAY_NS
    points, violations = _validate(samples, targets, sender.org_id, now_ns, horizon_ns)
    if violations and not partial:
        raise RuleViolation(_listed(violations), _refusal(violations, len(samples)))
    if points:
        _write(store, points)
    return IngestResult(len(points), tuple(violations))


def _now_ns() -> int:
    now = utcnow()
    return int(now.timestamp()) * NS_PER_SECOND + now.microsecond * 1000


def _raw_days(session: Session, org_id: str) -> int:
    days = session.scalar(select(Organization.telemetry_raw_days).where(Organization.id == org_id))
    return int(days or 30)


def _resolve(session: Session, org_id: str, refs: Iterable[str]) -> dict[str, _Target]:
    """Each reference (id or serial) the organization knows → its asset; ids win."""
    wanted = sorted(refs)
    found: dict[str, _Target] = {}
    by_serial: dict[str, _Target] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        rows = session.execute(
            select(Asset.id, Asset.serial, Asset.type).where(
                Asset.org_id == org_id, or_(Asset.id.in_(chunk), Asset.serial.in_(chunk))
            )
        )
        for asset_id, serial, asset_type in rows:
            target = _Target(asset_id, asset_type)
            found[asset_id] = target
            by_serial[serial] = target
    return {
        ref: found.get(ref) or by_serial[ref] for ref in wanted if ref in found or ref in by_serial
    }


def _readable(
    session: Session, principal: Principal, targets: dict[str, _Target]
) -> dict[str, _Target]:
    """Only the assets the user can read: the others stay unknown, never confirmed."""
    readable = reach(principal, Permission.ASSET_READ)
    if readable.everywhere:
        return targets
    visible = _within(session, sorted({t.asset_id for t in targets.values()}), readable)
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
    allowed = {device.asset_id} & set(asset_ids)
    others = [asset_id for asset_id in asset_ids if asset_id != device.asset_id]
    if others and device.forwards:
        for start in range(0, len(others), _LOOKUP_CHUNK):
            chunk = others[start : start + _LOOKUP_CHUNK]
            allowed.update(
                session.scalars(
                    select(Asset.id).where(Asset.id.in_(chunk), scopes.subtree_ids(device.asset_id))
                )
            )
    return allowed


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
