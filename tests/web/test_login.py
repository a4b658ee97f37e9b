"""Logging in and out through the form, CSRF, and the redirect of anonymous visitors."""

from __future__ import annotations

from support.web import csrf, log_in, post_form


def test_anonymous_page_redirects_to_login_with_next(client, tenant):
    response = client.get("/sites/sit_x?tab=1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "next=/sites/sit_x?tab%3D1" in response.headers["Location"]


def test_login_form_renders_without_inline_code(client):
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="csrf_token"' in html and 'name="password"' in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_login_success_sets_session_cookie_and_follows_local_next(client, tenant):
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": "operator@acme-solar.test",
            "password": "correct horse battery",
            "next": "/audit?action=x",
            "csrf_token": csrf(client),
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/audit?action=x"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("outpost_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    html = client.get("/").get_data(as_text=True)
    assert "operator@acme-solar.test" in html and "operator</span>" in html


def test_login_ignores_foreign_next(client, tenant):
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        client.get("/login")
        response = client.post(
            "/login",
            data={
                "email": "admin@acme-solar.test",
                "password": "correct horse battery",
                "next": target,
                "csrf_token": csrf(client),
            },
        )
        assert response.headers["Location"] == "/"


def test_login_failure_rerenders_form(client, tenant):
    response = log_in(client, "admin@acme-solar.test", "wrong password")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "Wrong email or password." in html
    assert 'value="admin@acme-solar.test"' in html
    assert client.get_cookie("outpost_session") is None


def test_login_without_csrf_token_is_400(client, tenant):
    client.get("/login")
    response = client.post(
        "/login", data={"email": "admin@acme-solar.test", "password": "correct horse battery"}
    )
    assert response.status_code == 400


def test_form_post_without_csrf_token_is_400(admin, tenant):
    response = admin.post("/tokens", data={"name": "sneaky"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = admin.post("/tokens", data={"name": "sneaky", "csrf_token": "forged"})
    assert response.status_code == 400


def test_logout_ends_the_session(admin, tenant):
    response = post_form(admin, "/logout", {})
    assert response.status_code == 303
    assert admin.get("/").status_code == 302
    response = admin.get("/audit?action=identity.session.ended")
    assert response.status_code == 302  # the old cookie no longer works


def test_logout_is_recorded(admin, operator, tenant):
    post_form(operator, "/logout", {})
    html = admin.get("/audit?action=identity.session.ended").get_data(as_text=True)
    assert "operator@acme-solar.test" in html


def test_pages_carry_no_inline_code(admin, tenant):
    for path in ("/", "/audit", "/tokens", "/changesets/new"):
        html = admin.get(path).get_data(as_text=True)
        assert "<script" not in html and "style=" not in html and "<style" not in html, path
        assert "http://" not in html and "https://" not in html, path


def test_stylesheet_is_served(client):
    with client.get("/static/outpost.css") as response:
        assert response.status_code == 200
        assert "http" not in response.get_data(as_text=True)
