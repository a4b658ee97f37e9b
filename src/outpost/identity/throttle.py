"""Login throttling: a progressive wait per account and per source address.

Each failed login counts against the account (the email, known or not, so answers do
not reveal which accounts exist) and against the source IP. Past a few free failures
every new one doubles the wait, up to ``MAX_WAIT``; a login attempted while waiting is
refused with 429 and ``Retry-After`` before the password is even checked. A success
clears the account's count (not the address's: one valid account must not launder a
password-guessing address). Counts live in the database, so every worker process and
node sees the same ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outpost.errors import TooManyRequests
from outpost.identity.models import LoginThrottle

MAX_WAIT = timedelta(minutes=15)


@dataclass(frozen=True)
class Limit:
    prefix: str
    free_failures: int


ACCOUNT = Limit("account", 3)
ADDRESS = Limit("ip", 20)  # many people can share one address (an office, a NAT)


def _keys(email: str, source_ip: str | None) -> list[tuple[str, Limit]]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    keys = [(f"{ACCOUNT.prefix}:{account}", ACCOUNT)]
    if source_ip:
        keys.append((f"{ADDRESS.prefix}:{source_ip[:64]}", ADDRESS))
    return keys


def wait_after(failures: int, limit: Limit) -> timedelta:
    """How long to wait after ``failures`` consecutive failures: 0, then 2 s, 4 s, 8 s…"""
    excess = failures - limit.free_failures
    if excess <= 0:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(excess, 20)), MAX_WAIT)


def check(session: Session, email: str, source_ip: str | None, now: datetime) -> None:
    """Refuse with 429 while the account or the address must wait."""
    rows = session.scalars(
        select(LoginThrottle).where(
            LoginThrottle.key.in_([key for key, _ in _keys(email, source_ip)])
        )
    )
    waits = [
        row.blocked_until - now for row in rows if row.blocked_until and row.blocked_until > now
    ]
    if waits:
        seconds = int(max(waits).total_seconds()) + 1
        raise TooManyRequests(
            f"Too many failed logins; try again in {seconds} seconds.", retry_after_s=seconds
        )


def record_failure(session: Session, email: str, source_ip: str | None, now: datetime) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for key, limit in _keys(email, source_ip):
        counted = (
            dialect.insert(LoginThrottle)
            .values(key=key, failures=1, last_failure_at=now)
            .on_conflict_do_update(
                index_elements=[LoginThrottle.key],
                set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
            )
            .returning(LoginThrottle.failures)
        )
        wait = wait_after(session.execute(counted).scalar_one(), limit)
        if wait:
            session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(blocked_until=now + wait)
            )


def record_success(session: Session, email: str) -> None:
    (account_key, _), *_ = _keys(email, None)
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key))
