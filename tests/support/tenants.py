"""Tenants for tests: an organization with an admin, an operator and a viewer, and a
token for each."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity import service as identity
from outpost.identity.models import ApiToken
from outpost.identity.principal import Actor
from outpost.identity.secrets import digest, new_token


@dataclass(frozen=True)
class Tenant:
    org_id: str
    admin: str
    operator: str
    viewer: str
    admin_actor: Actor

    def headers(self, role: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}", **extra}


def make_tenant(db: Database, name: str) -> Tenant:
    tokens: dict[str, str] = {}
    with db.unit_of_work() as session:
        org = identity.create_organization(session, name)
        system = identity.system_actor(org.id, "test")
        for role in ("admin", "operator", "viewer"):
            email = f"{role}@{name.lower().replace(' ', '-')}.test"
            user = identity.add_user(
                session, system, email=email, password="correct horse battery", role=role
            )
            member = identity.principal_for(session, user, org.id)
            tokens[role] = identity.create_token(
                session, Actor(member), name=f"{role} token"
            ).secret
            if role == "admin":
                admin_actor = Actor(member)
    return Tenant(org.id, tokens["admin"], tokens["operator"], tokens["viewer"], admin_actor)


def insert_token(session: Session, org_id: str, user_id: str) -> str:
    """An API token of the user, written directly: a member whose access is a grant only
    may not create one (a grant never carries token.create), but may hold an older one."""
    secret, prefix = new_token()
    now = utcnow()
    session.add(
        ApiToken(
            id=f"tok_test{prefix[-8:]}{secrets.token_hex(4)}",
            org_id=org_id,
            user_id=user_id,
            name="test",
            prefix=prefix,
            secret_hash=digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=1),
        )
    )
    return secret
