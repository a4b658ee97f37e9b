"""API tokens: list, create (secret shown once), revoke."""

from __future__ import annotations

import re

from support.web import post_form


def test_tokens_page_lists_own_tokens(viewer, tenant):
    html = viewer.get("/tokens").get_data(as_text=True)
    assert "viewer token" in html and "admin token" not in html


def test_admin_sees_every_token(admin, tenant):
    html = admin.get("/tokens").get_data(as_text=True)
    assert "viewer token" in html and "admin token" in html


def test_create_token_shows_secret_once_and_it_works(viewer, client, tenant):
    response = post_form(viewer, "/tokens", {"name": "laptop", "expires_in_days": "30"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "shown only this once" in html
    secret = re.search(r'id="secret" class="secret" type="text" readonly value="([^"]+)"', html)
    assert secret is not None
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"})
    assert me.status_code == 200 and me.get_json()["role"] == "viewer"
    listing = viewer.get("/tokens").get_data(as_text=True)
    assert "laptop" in listing and secret.group(1) not in listing


def test_create_token_without_name_is_shown(viewer, tenant):
    response = post_form(viewer, "/tokens", {"name": "  "})
    assert response.status_code == 422
    assert "name" in response.get_data(as_text=True)


def test_revoke_token(viewer, client, tenant):
    html = viewer.get("/tokens").get_data(as_text=True)
    token_id = re.search(r'action="/tokens/(tok_[^/]+)/revoke"', html).group(1)
    response = post_form(viewer, f"/tokens/{token_id}/revoke", {})
    assert response.status_code == 303
    html = viewer.get(response.headers["Location"]).get_data(as_text=True)
    assert "The token was revoked." in html and "revoked</span>" in html
    assert client.get("/api/v1/me", headers=tenant.headers("viewer")).status_code == 401


def test_cannot_revoke_someone_elses_token(viewer, admin, tenant):
    html = admin.get("/tokens").get_data(as_text=True)
    admin_token = re.search(r'action="/tokens/(tok_[^/]+)/revoke"', html).group(1)
    assert post_form(viewer, f"/tokens/{admin_token}/revoke", {}).status_code == 404


def test_the_token_page_offers_a_scope(admin, tenant) -> None:
    page = admin.get("/tokens").get_data(as_text=True)
    assert 'name="permissions" value="asset.read"' in page
    made = post_form(
        admin, "/tokens", {"name": "read only", "permissions": ["asset.read", "site.read"]}
    )
    assert made.status_code == 201
    assert "asset.read" in admin.get("/tokens").get_data(as_text=True)
