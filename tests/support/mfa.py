"""MFA test helpers: enrol a user through the service, and the code their app shows now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import factors, totp
from outpost.identity import service as identity
from outpost.identity.models import TotpFactor, User
from outpost.identity.principal import Actor, Principal

SECRET_KEY = "test-secret-key"  # the ``settings`` fixture's


@dataclass(frozen=True)
class Enrolled:
    user_id: str
    secret: str
    recovery_codes: list[str]

    def code(self, steps_ahead: int = 0) -> str:
        """The code the authenticator shows now, or ``steps_ahead`` 30-second steps later
        (a code works once: a second check in the same test takes the next step's)."""
        return totp.code_at(self.secret, utcnow() + timedelta(seconds=30 * steps_ahead))


def user_actor(db: Database, email: str, org_id: str) -> Actor:
    with db.unit_of_work(write=False) as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return Actor(identity.principal_for(session, user, org_id))


def principal_of(db: Database, email: str, org_id: str) -> Principal:
    return user_actor(db, email, org_id).principal


def enrol(db: Database, email: str, org_id: str, secret_key: str = SECRET_KEY) -> Enrolled:
    actor = user_actor(db, email, org_id)
    with db.unit_of_work() as session:
        enrolment = factors.begin_enrolment(session, actor, secret_key)
    with db.unit_of_work() as session:
        codes = factors.confirm_enrolment(
            session, actor, totp.code_at(enrolment.secret, utcnow()), secret_key
        )
        # the confirming code is spent: let the test use the current one again
        session.execute(
            update(TotpFactor)
            .where(TotpFactor.user_id == actor.principal.user_id)
            .values(last_step=0)
        )
    return Enrolled(actor.principal.user_id, enrolment.secret, codes)
