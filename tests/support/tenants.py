"""Tenants for tests: an organization with an admin, an operator and a viewer, and a
token for each."""

from __future__ import annotations

from dataclasses import dataclass

from outpost.db import Database
from outpost.identity import service as identity
from outpost.identity.principal import Actor


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
