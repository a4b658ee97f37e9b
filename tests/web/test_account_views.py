"""Your account: change your password, see your sessions, log out everywhere."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from support.web import log_in, post_form

NEW_PASSWORD = "a brand new passphrase"


def _change(client: FlaskClient, current: str, new: str, confirm: str | None = None) -> Any:
    return post_form(
        client,
        "/account/password",
        {"current": current, "new": new, "confirm": new if confirm is None else confirm},
    )


def test_account_page_lists_sessions(admin: FlaskClient, tenant: Any) -> None:
    page = admin.get("/account").get_data(as_text=True)
    assert "Your sessions" in page
    assert "this one" in page


def test_password_change_is_checked(admin: FlaskClient, tenant: Any) -> None:
    wrong = _change(admin, "not my password", NEW_PASSWORD)
    assert wrong.status_code == 422
    assert "current password is not right" in wrong.get_data(as_text=True)
    weak = _change(admin, "correct horse battery", "Password1234")
    assert weak.status_code == 422
    assert "most common" in weak.get_data(as_text=True)
    mismatch = _change(admin, "correct horse battery", NEW_PASSWORD, "something else entirely")
    assert mismatch.status_code == 422


def test_password_change_ends_other_sessions_and_tokens(
    app: Flask, admin: FlaskClient, tenant: Any
) -> None:
    other = app.test_client()
    assert log_in(other, "admin@acme-solar.test").status_code == 303
    assert app.test_client().get("/api/v1/sites", headers=tenant.headers()).status_code == 200

    changed = _change(admin, "correct horse battery", NEW_PASSWORD)
    assert changed.status_code == 303

    assert admin.get("/account").status_code == 200  # this session goes on
    assert other.get("/account").status_code == 302  # the other one is over
    api = app.test_client().get("/api/v1/sites", headers=tenant.headers())
    assert api.status_code == 401  # the admin's token is revoked
    assert log_in(app.test_client(), "admin@acme-solar.test").status_code == 401
    assert log_in(app.test_client(), "admin@acme-solar.test", NEW_PASSWORD).status_code == 303
    events = app.test_client().get(
        "/api/v1/audit?action=identity.user.password_changed", headers=tenant.headers("viewer")
    )
    assert len(events.get_json()["items"]) == 1


def test_log_out_everywhere(app: Flask, admin: FlaskClient, tenant: Any) -> None:
    other = app.test_client()
    log_in(other, "admin@acme-solar.test")
    response = post_form(admin, "/account/logout-everywhere", {})
    assert response.status_code == 303
    assert admin.get("/account").status_code == 302
    assert other.get("/account").status_code == 302
