"""Invitations for external users, through the HTTP API and the public page: an expiring,
single-use link that sets a password and lands its holder with the grant only."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config
from sqlalchemy import select, update

from fleet import Fleet, build_fleet
from outpost.audit.models import AuditEvent
from outpost.clock import frozen, utcnow
from outpost.db import Database
from outpost.identity import secrets
from outpost.identity.models import Grant, Invitation, Membership, Organization, User
from outpost.server import RedactingLogger
from support.mfa import enrol
from support.tenants import Tenant
from support.web import PASSWORD, csrf, log_in, post_form

PARTNER = "partner@ext.test"
NEW_PASSWORD = "a long partner passphrase"
VIEWER = "viewer@acme-solar.test"


def _invite(
    client: FlaskClient,
    tenant: Tenant,
    site_id: str | None,
    *,
    role: str = "technician",
    email: str = PARTNER,
    as_role: str = "operator",
    **extra: Any,
) -> Any:
    body = {
        "email": email,
        "role": role,
        "site_id": site_id,
        "duration_minutes": 480,
        "reason": "replace inverter 3",
        **extra,
    }
    return client.post("/api/v1/invitations", json=body, headers=tenant.headers(as_role))


def _invited(client: FlaskClient, tenant: Tenant, site_id: str | None, **kwargs: Any) -> str:
    made = _invite(client, tenant, site_id, **kwargs)
    assert made.status_code == 201, made.get_json()
    url: str = made.get_json()["url"]
    return url


def _accept(client: FlaskClient, url: str, **fields: str) -> Any:
    client.get(url)  # the page mints the CSRF cookie, as a browser would get it
    data = {"display_name": "Pat Partner", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    return post_form(client, url, {**data, **fields})


def _fleets(client: FlaskClient, tenant: Tenant) -> tuple[Fleet, Fleet]:
    return build_fleet(client, tenant.headers(), "P1"), build_fleet(client, tenant.headers(), "P2")


def _membership_role(db: Database, email: str, org_id: str) -> str | None:
    with db.unit_of_work(write=False) as session:
        return session.scalar(
            select(Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(User.email == email, Membership.org_id == org_id)
        )


def _actions(db: Database, org_id: str) -> list[str]:
    with db.unit_of_work(write=False) as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.org_id == org_id)
                .order_by(AuditEvent.seq)
            )
        )


# --- the whole path ---------------------------------------------------------------------


def test_an_invited_partner_sets_a_password_and_lands_with_the_grant_only(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, p2 = _fleets(client, tenant)
    made = _invite(client, tenant, p1.site["id"])
    assert made.status_code == 201, made.get_json()
    assert made.headers["Cache-Control"] == "no-store"
    body = made.get_json()
    assert body["state"] == "pending"
    assert body["url"].startswith("/invite/opi_")
    url = body["url"]

    partner = app.test_client()
    page = partner.get(url)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    for shown in ("Acme Solar", "technician", "Plant P1", PARTNER, "operator@acme-solar.test"):
        assert shown in html

    accepted = _accept(partner, url)
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == f"/sites/{p1.site['id']}"
    assert partner.get_cookie("outpost_session") is not None
    assert partner.get(f"/sites/{p1.site['id']}").status_code == 200
    assert partner.get(f"/sites/{p2.site['id']}").status_code == 404
    assert _membership_role(db, PARTNER, tenant.org_id) == "none"

    with db.unit_of_work(write=False) as session:
        grant = session.scalars(select(Grant).join(User, User.id == Grant.user_id)).one()
        invitation = session.scalars(select(Invitation)).one()
        operator_id = session.scalar(
            select(User.id).where(User.email == "operator@acme-solar.test")
        )
    assert (grant.role, grant.site_id, grant.granted_by) == (
        "technician",
        p1.site["id"],
        operator_id,
    )
    assert grant.expires_at is not None
    assert grant.expires_at - grant.starts_at == timedelta(minutes=480)
    assert invitation.used_at is not None and invitation.grant_id == grant.id

    actions = _actions(db, tenant.org_id)
    for action in (
        "identity.invitation.created",
        "identity.user.created",
        "identity.membership.created",
        "identity.grant.created",
        "identity.invitation.accepted",
        "identity.session.started",
    ):
        assert action in actions, action

    listed = client.get("/api/v1/invitations", headers=tenant.headers("operator")).get_json()
    assert [item["state"] for item in listed["items"]] == ["accepted"]
    assert listed["next_cursor"] is None


def test_the_link_works_once(app: Flask, client: FlaskClient, tenant: Tenant) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    assert _accept(app.test_client(), url).status_code == 303
    again = app.test_client()
    assert again.get(url).status_code == 404
    assert (
        post_form(again, url, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
        == 404
    )


def test_an_expired_link_is_gone(app: Flask, client: FlaskClient, tenant: Tenant) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    partner = app.test_client()
    csrf(partner)
    with frozen(utcnow() + timedelta(hours=72, seconds=1)):
        assert partner.get(url).status_code == 404
        assert _accept(partner, url).status_code == 404
    assert partner.get(url).status_code == 200


def test_a_revoked_link_is_gone(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    made = _invite(client, tenant, p1.site["id"]).get_json()
    path = f"/api/v1/invitations/{made['id']}"
    assert client.delete(path, headers=tenant.headers("viewer")).status_code == 404
    assert client.delete(path, headers=tenant.headers("operator")).status_code == 204
    assert client.delete(path, headers=tenant.headers("admin")).status_code == 204  # no-op
    partner = app.test_client()
    assert partner.get(made["url"]).status_code == 404
    assert _accept(partner, made["url"]).status_code == 404
    assert _actions(db, tenant.org_id).count("identity.invitation.revoked") == 1
    listed = client.get("/api/v1/invitations?state=revoked", headers=tenant.headers()).get_json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]


def test_an_accepted_invitation_cannot_be_revoked(
    app: Flask, client: FlaskClient, tenant: Tenant
) -> None:
    p1, _ = _fleets(client, tenant)
    made = _invite(client, tenant, p1.site["id"]).get_json()
    assert _accept(app.test_client(), made["url"]).status_code == 303
    refused = client.delete(f"/api/v1/invitations/{made['id']}", headers=tenant.headers())
    assert refused.status_code == 409


def test_a_weak_password_rerenders_the_form_and_creates_nothing(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    partner = app.test_client()
    weak = _accept(partner, url, password="password", confirm="password")
    assert weak.status_code == 422
    html = weak.get_data(as_text=True)
    assert "at least 12 characters" in html
    assert 'name="confirm"' in html
    differ = _accept(partner, url, confirm="another long passphrase")
    assert differ.status_code == 422
    assert "The two passwords differ." in differ.get_data(as_text=True)
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(User.id).where(User.email == PARTNER)) is None
        assert session.scalars(select(Grant)).all() == []
        assert session.scalars(select(Invitation)).one().used_at is None
    assert partner.get_cookie("outpost_session") is None
    assert _accept(partner, url).status_code == 303  # still usable


# --- who may invite, and what ------------------------------------------------------------


def test_an_inviter_gives_only_what_they_hold(client: FlaskClient, tenant: Tenant) -> None:
    refused = _invite(client, tenant, None, role="admin")
    assert refused.status_code == 422
    codes = {error["code"] for error in refused.get_json()["errors"]}
    assert "grant.permission_not_held" in codes


def test_every_problem_is_listed(client: FlaskClient, tenant: Tenant) -> None:
    refused = _invite(
        client,
        tenant,
        None,
        email="not-an-email",
        role="none",
        duration_minutes=60 * 24 * 30,
    )
    assert refused.status_code == 422
    codes = {error["code"] for error in refused.get_json()["errors"]}
    assert codes == {
        "invitation.email_invalid",
        "invitation.role_empty",
        "invitation.duration_out_of_range",
    }
    self_invite = _invite(client, tenant, None, email="Operator@acme-solar.test")
    assert [e["code"] for e in self_invite.get_json()["errors"]] == ["invitation.self"]


def test_a_viewer_cannot_invite(client: FlaskClient, tenant: Tenant) -> None:
    p1, _ = _fleets(client, tenant)
    assert _invite(client, tenant, p1.site["id"], as_role="viewer").status_code == 403
    unknown = _invite(client, tenant, "sit_missing")
    assert unknown.status_code == 404


def test_acceptance_rechecks_what_the_inviter_holds_now(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    with db.unit_of_work() as session:
        session.execute(
            update(Membership)
            .where(
                Membership.org_id == tenant.org_id,
                Membership.user_id
                == select(User.id)
                .where(User.email == "operator@acme-solar.test")
                .scalar_subquery(),
            )
            .values(role="viewer")
        )
    partner = app.test_client()
    refused = _accept(partner, url)
    assert refused.status_code == 409
    assert "can no longer give" in refused.get_data(as_text=True)
    with db.unit_of_work(write=False) as session:
        assert session.scalar(select(User.id).where(User.email == PARTNER)) is None
        assert session.scalars(select(Invitation)).one().used_at is None


# --- existing accounts ------------------------------------------------------------------


def test_an_existing_member_gives_their_own_password(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"], email=VIEWER)
    partner = app.test_client()
    page = partner.get(url).get_data(as_text=True)
    assert "already have an Outpost account" in page
    assert 'name="confirm"' not in page
    wrong = post_form(partner, url, {"password": NEW_PASSWORD})
    assert wrong.status_code == 401
    assert "Wrong password" in wrong.get_data(as_text=True)
    assert partner.get_cookie("outpost_session") is None
    right = post_form(partner, url, {"password": PASSWORD})
    assert right.status_code == 303
    assert _membership_role(db, VIEWER, tenant.org_id) == "viewer"  # kept
    with db.unit_of_work(write=False) as session:
        grant = session.scalars(select(Grant)).one()
        assert grant.role == "technician"


def test_a_user_of_another_organization_joins_with_no_standing_role(
    app: Flask, client: FlaskClient, tenant: Tenant, other_tenant: Tenant, db: Database
) -> None:
    p1, p2 = _fleets(client, tenant)
    outsider = "viewer@other-corp.test"
    url = _invited(client, tenant, p1.site["id"], email=outsider)
    partner = app.test_client()
    assert post_form(partner, url, {"password": PASSWORD}).status_code == 303
    assert _membership_role(db, outsider, tenant.org_id) == "none"
    assert partner.get(f"/sites/{p1.site['id']}").status_code == 200
    assert partner.get(f"/sites/{p2.site['id']}").status_code == 404


def test_an_organization_that_requires_mfa_sends_the_new_member_to_enrolment(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    with db.unit_of_work() as session:
        session.execute(
            update(Organization).where(Organization.id == tenant.org_id).values(mfa_required=True)
        )
    partner = app.test_client()
    accepted = _accept(partner, url)
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == "/account/mfa/setup"
    assert partner.get_cookie("outpost_session") is None
    assert partner.get("/account/mfa/setup").status_code == 200


def test_an_existing_user_with_mfa_gives_a_code_before_the_session_starts(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"], email=VIEWER)
    enrolled = enrol(db, VIEWER, tenant.org_id)
    partner = app.test_client()
    partner.get(url)
    accepted = post_form(partner, url, {"password": PASSWORD})
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == "/login/mfa"
    assert partner.get_cookie("outpost_session") is None
    second = post_form(partner, "/login/mfa", {"code": enrolled.code()})
    assert second.status_code == 303
    assert second.headers["Location"] == f"/sites/{p1.site['id']}"
    assert partner.get_cookie("outpost_session") is not None


# --- concurrency ------------------------------------------------------------------------


def test_two_concurrent_acceptances_cannot_both_succeed(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    url = _invited(client, tenant, p1.site["id"])
    browsers = [app.test_client() for _ in range(2)]
    tokens = []
    for browser in browsers:
        browser.get(url)
        tokens.append(csrf(browser))
    start = threading.Barrier(len(browsers))
    statuses: list[int] = []

    def run(browser: FlaskClient, token: str) -> None:
        data = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token}
        start.wait()
        statuses.append(browser.post(url, data=data).status_code)

    threads = [
        threading.Thread(target=run, args=(browser, token))
        for browser, token in zip(browsers, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [303, 404]
    with db.unit_of_work(write=False) as session:
        assert len(session.scalars(select(Grant)).all()) == 1
    assert _actions(db, tenant.org_id).count("identity.invitation.accepted") == 1


# --- secrecy ----------------------------------------------------------------------------


def test_the_secret_is_never_in_the_audit_log(
    app: Flask, client: FlaskClient, tenant: Tenant, db: Database
) -> None:
    p1, _ = _fleets(client, tenant)
    made = _invite(client, tenant, p1.site["id"]).get_json()
    secret = made["url"].removeprefix("/invite/")
    assert _accept(app.test_client(), made["url"]).status_code == 303
    with db.unit_of_work(write=False) as session:
        rows = session.scalars(select(AuditEvent)).all()
        logged = " ".join(
            str(value)
            for row in rows
            for value in (row.before, row.after, row.reason, row.actor_label, row.user_agent)
        )
        assert session.scalars(select(Invitation)).one().secret_hash == secrets.digest(secret)
    assert secret not in logged
    assert secrets.digest(secret) not in logged
    assert "secret" not in made or made.get("secret") is None


def test_access_logs_blank_the_invitation_secret() -> None:
    secret = "opi_s3cr3t-inv1tat10n"
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/invite/{secret}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": f"/invite/{secret}",
        "HTTP_REFERER": f"http://outpost.test/invite/{secret}",
    }
    response = SimpleNamespace(status="303 See Other", headers=[], sent=0)
    atoms = logger.atoms(response, [], environ, timedelta(milliseconds=3))
    assert secret not in " ".join(str(value) for value in atoms.values())
    assert atoms["U"] == "/invite/[redacted]"


# --- the inviter's pages ----------------------------------------------------------------


def test_the_invite_page_shows_the_link_once(client: FlaskClient, tenant: Tenant) -> None:
    p1, _ = _fleets(client, tenant)
    log_in(client, "operator@acme-solar.test")
    form = client.get("/access/invite")
    assert form.status_code == 200
    assert "Plant P1" in form.get_data(as_text=True)
    fields = {
        "email": PARTNER,
        "role": "technician",
        "site_id": p1.site["id"],
        "duration_minutes": "480",
        "reason": "replace inverter 3",
    }
    made = post_form(client, "/access/invite", fields)
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    assert "/invite/opi_" in made.get_data(as_text=True)
    listed = client.get("/access/invite").get_data(as_text=True)
    assert PARTNER in listed and "/invite/opi_" not in listed
    refused = post_form(client, "/access/invite", {**fields, "role": "admin", "site_id": ""})
    assert refused.status_code == 422
    assert "so you cannot give it" in refused.get_data(as_text=True)


def test_a_viewer_gets_no_invite_page(client: FlaskClient, tenant: Tenant) -> None:
    log_in(client, VIEWER)
    assert client.get("/access/invite").status_code == 403
