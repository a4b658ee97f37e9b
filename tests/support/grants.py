"""Grant test helpers: extra members with their own token, grants given through the API,
and what the database holds (to prove a refusal wrote nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from outpost.audit.models import AuditEvent
from outpost.clock import isoformat, utcnow
from outpost.db import Database
from outpost.identity import service as identity
from outpost.identity.models import Grant
from support.tenants import Tenant, insert_token
from support.web import PASSWORD


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def add_member(db: Database, tenant: Tenant, name: str, role: str) -> Member:
    """A new member of ``tenant`` with ``role`` (``"none"`` too) and an API token.

    The token row is written directly: a member whose role lacks ``token.create`` (the
    ``"none"`` role) cannot make one, which is the point of some tests; think of it as a
    token made before their role was lowered.
    """
    email = f"{name}@{tenant.org_id.lower()}.test"
    with db.unit_of_work() as session:
        user = identity.add_user(
            session, tenant.admin_actor, email=email, password=PASSWORD, role=role
        )
        secret = insert_token(session, tenant.org_id, user.id)
        return Member(user.id, email, secret)


def user_id_of(client: FlaskClient, headers: dict[str, str]) -> str:
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.get_json()
    found: str = me.get_json()["user_id"]
    return found


def when(moment: datetime) -> str:
    return isoformat(moment)


def give(
    client: FlaskClient,
    headers: dict[str, str],
    user_id: str,
    role: str = "operator",
    *,
    site_id: str | None = None,
    asset_id: str | None = None,
    hours: float | None = 4,
    starts_at: datetime | str | None = None,
    expires_at: datetime | str | None = None,
    reason: str | None = "Replace the inverter fuse",
) -> Any:
    """POST /api/v1/grants; ``expires_at`` defaults to ``hours`` after the start (None
    with ``hours=None``: a standing assignment). Returns the response."""
    body: dict[str, Any] = {"user_id": user_id, "role": role}
    if reason is not None:
        body["reason"] = reason
    if site_id is not None:
        body["site_id"] = site_id
    if asset_id is not None:
        body["asset_id"] = asset_id
    start = starts_at if isinstance(starts_at, datetime) else utcnow()
    if starts_at is not None:
        body["starts_at"] = when(starts_at) if isinstance(starts_at, datetime) else starts_at
    if expires_at is not None:
        body["expires_at"] = when(expires_at) if isinstance(expires_at, datetime) else expires_at
    elif hours is not None:
        body["expires_at"] = when(start + timedelta(hours=hours))
    return client.post("/api/v1/grants", json=body, headers=headers)


def given(response: Any) -> dict[str, Any]:
    """The created grant of a ``give`` that must succeed."""
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def grant_count(db: Database) -> int:
    with db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(Grant)) or 0


def audit_count(db: Database, action: str | None = None) -> int:
    with db.unit_of_work(write=False) as session:
        query = select(func.count()).select_from(AuditEvent)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return session.scalar(query) or 0


def error_codes(response: Any) -> list[str]:
    return sorted(error["code"] for error in response.get_json().get("errors", []))
