"""Identity basics: argon2id, tokens hashed and shown once, expiry, revocation, roles."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from outpost.identity import service
from outpost.identity.models import ApiToken, User
from outpost.identity.secrets import digest


def test_passwords_are_argon2id(db, tenant):
    with db.unit_of_work(write=False) as session:
        hashes = list(session.scalars(select(User.password_hash)))
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)


def test_token_is_hashed_at_rest_and_shown_once(client, tenant, db):
    r = client.post(
        "/api/v1/tokens",
        json={"name": "integration", "expires_in_days": 30},
        headers=tenant.headers(),
    )
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    secret = body["token"]
    assert secret.startswith(body["prefix"] + "_") and len(secret) > 40
    with db.unit_of_work(write=False) as session:
        stored = session.get(ApiToken, body["id"])
        assert stored.secret_hash == digest(secret) and secret not in stored.secret_hash
    listed = client.get("/api/v1/tokens", headers=tenant.headers()).get_json()["items"]
    assert all("token" not in t for t in listed)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert me["role"] == "admin" and me["token_id"] == body["id"]
    with db.unit_of_work(write=False) as session:
        assert session.get(ApiToken, body["id"]).last_used_at is not None


def test_revoked_token_is_refused_on_the_next_request(client, tenant):
    created = client.post(
        "/api/v1/tokens", json={"name": "short"}, headers=tenant.headers()
    ).get_json()
    h = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/v1/me", headers=h).status_code == 200
    assert (
        client.delete(f"/api/v1/tokens/{created['id']}", headers=tenant.headers()).status_code
        == 204
    )
    r = client.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and r.mimetype == "application/problem+json"


def test_expired_token_is_refused(client, tenant, db):
    with db.unit_of_work() as session:
        issued = service.create_token(
            session, tenant.admin_actor, name="old", expires_in=timedelta(seconds=1)
        )
        session.get(ApiToken, issued.token.id).expires_at -= timedelta(seconds=2)
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.secret}"}).status_code
        == 401
    )


def test_role_downgrade_applies_to_existing_tokens(client, tenant, db):
    from outpost.identity.models import Membership

    with db.unit_of_work() as session:
        for membership in session.scalars(
            select(Membership).where(
                Membership.org_id == tenant.org_id, Membership.role == "operator"
            )
        ):
            membership.role = "viewer"
    r = client.post(
        "/api/v1/sites", json={"name": "A", "code": "A"}, headers=tenant.headers("operator")
    )
    assert r.status_code == 403


def test_token_of_one_org_sees_only_that_org(client, tenant, other_tenant):
    assert client.get("/api/v1/me", headers=tenant.headers()).get_json()["org_id"] == tenant.org_id
    client.post("/api/v1/sites", json={"name": "Mine", "code": "M"}, headers=tenant.headers())
    assert client.get("/api/v1/sites", headers=other_tenant.headers()).get_json()["items"] == []


def test_non_admin_cannot_revoke_someone_elses_token(client, tenant):
    admin_tokens = client.get("/api/v1/tokens", headers=tenant.headers()).get_json()["items"]
    assert len(admin_tokens) == 3  # the admin sees every token of the organization
    mine = client.get("/api/v1/tokens", headers=tenant.headers("viewer")).get_json()["items"]
    assert len(mine) == 1
    admins = [t for t in admin_tokens if t["id"] != mine[0]["id"]]
    r = client.delete(f"/api/v1/tokens/{admins[0]['id']}", headers=tenant.headers("viewer"))
    assert r.status_code == 404


def test_short_password_is_refused(db, tenant):
    import pytest

    from outpost.errors import BadRequest

    with pytest.raises(BadRequest) as caught, db.unit_of_work() as session:
        service.add_user(
            session, tenant.admin_actor, email="new@x.test", password="short", role="viewer"
        )
    assert {v.code for v in caught.value.violations} == {"user.password_weak"}


def test_public_allowlist_and_everything_else_needs_auth(client):
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
    r = client.get("/api/v1/sites")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/").status_code == 302
