"""MFA through the pages: enrolment with a QR code, the second login step, forced
enrolment, recovery codes, and confirming a code before creating a token."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from outpost.audit.actions import Action
from outpost.audit.models import AuditEvent
from outpost.clock import utcnow
from outpost.identity import factors, totp
from outpost.identity.models import Organization, WebSession
from support.mfa import enrol
from support.web import csrf, log_in, post_form

OPERATOR = "operator@acme-solar.test"
CHALLENGE = "outpost_mfa_challenge"


def _actions(db):
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(AuditEvent.action)))


def _two_step_login(client, email, code, next_path="/"):
    client.get("/login")
    first = client.post(
        "/login",
        data={
            "email": email,
            "password": "correct horse battery",
            "next": next_path,
            "csrf_token": csrf(client),
        },
    )
    assert first.status_code == 303 and first.headers["Location"] == "/login/mfa"
    return post_form(client, "/login/mfa", {"code": code})


def _require_mfa(db, tenant):
    with db.unit_of_work() as session:
        factors.set_mfa_required(session, tenant.admin_actor, True)


def _no_inline_code(html):
    assert "<script" not in html and "style=" not in html and "<style" not in html


def test_enrolment_through_the_pages(admin, db, tenant):
    page = admin.get("/account/mfa")
    assert page.status_code == 200 and "Set up an authenticator" in page.get_data(as_text=True)
    started = post_form(admin, "/account/mfa/setup", {})
    assert started.status_code == 303 and started.headers["Location"] == "/account/mfa/setup"
    setup = admin.get("/account/mfa/setup")
    html = setup.get_data(as_text=True)
    assert setup.headers["Cache-Control"] == "no-store"
    assert 'src="data:image/svg+xml' in html
    _no_inline_code(html)
    secret = re.search(r'id="totp-secret"[^>]*value="([A-Z2-7]+)"', html).group(1)

    wrong = post_form(admin, "/account/mfa/setup/confirm", {"code": "000000"})
    assert wrong.status_code == 422 and "wrong" in wrong.get_data(as_text=True)

    done = post_form(admin, "/account/mfa/setup/confirm", {"code": totp.code_at(secret, utcnow())})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>", done.text)
    assert len(codes) == 10
    status = admin.get("/account/mfa").get_data(as_text=True)
    assert "10 unused recovery codes" in status
    assert not any(code in status for code in codes)  # shown once
    assert {"identity.mfa.enrolment_started", "identity.mfa.enrolled"} <= set(_actions(db))
    # enrolling proved the factor: this session may create a token at once
    assert post_form(admin, "/tokens", {"name": "ci"}).status_code == 201


def test_login_with_mfa_needs_the_second_step(client, db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    response = log_in(client, OPERATOR)
    assert response.status_code == 303 and response.headers["Location"] == "/login/mfa"
    assert client.get_cookie("outpost_session") is None
    assert client.get_cookie(CHALLENGE) is not None
    assert client.get("/").status_code == 302  # still anonymous
    step = client.get("/login/mfa")
    assert step.status_code == 200 and 'name="code"' in step.text
    _no_inline_code(step.text)

    wrong = post_form(client, "/login/mfa", {"code": "000000"})
    assert wrong.status_code == 401 and "Wrong code" in wrong.text
    assert client.get_cookie("outpost_session") is None

    done = post_form(client, "/login/mfa", {"code": enrolled.code()})
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert client.get_cookie("outpost_session") is not None
    assert client.get_cookie(CHALLENGE) is None
    assert OPERATOR in client.get("/").text
    with db.unit_of_work(write=False) as session:
        assert session.scalars(select(WebSession.mfa_verified_at)).one() is not None


def test_a_code_is_not_accepted_twice_at_login(app, db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    code = enrolled.code()
    assert _two_step_login(app.test_client(), OPERATOR, code).status_code == 303
    assert _two_step_login(app.test_client(), OPERATOR, code).status_code == 401


def test_recovery_code_logs_in_once(app, db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    recovery = enrolled.recovery_codes[0]
    first = _two_step_login(app.test_client(), OPERATOR, recovery.upper(), "/audit")
    assert first.status_code == 303 and first.headers["Location"] == "/audit"
    again = _two_step_login(app.test_client(), OPERATOR, recovery)
    assert again.status_code == 401
    assert "identity.mfa.recovery_used" in _actions(db)


def test_wrong_codes_count_as_failed_logins(app, db, tenant):
    enrol(db, OPERATOR, tenant.org_id)
    client = app.test_client()
    log_in(client, OPERATOR)
    statuses = [post_form(client, "/login/mfa", {"code": "000000"}) for _ in range(5)]
    assert [r.status_code for r in statuses] == [401, 401, 401, 401, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1


def test_the_second_step_needs_a_valid_challenge(client, db, tenant):
    enrol(db, OPERATOR, tenant.org_id)
    assert client.get("/login/mfa").headers["Location"] == "/login"
    client.set_cookie(CHALLENGE, "forged.challenge.value")
    assert client.get("/login/mfa").headers["Location"] == "/login"
    # a user with an authenticator cannot use the challenge to set up another one
    log_in(client, OPERATOR)
    assert client.get("/account/mfa/setup").status_code == 302
    assert post_form(client, "/account/mfa/setup", {}).status_code == 302


def test_an_organization_requiring_mfa_sends_members_to_enrolment(client, db, tenant):
    _require_mfa(db, tenant)
    response = log_in(client, OPERATOR)
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/mfa/setup"
    assert client.get_cookie("outpost_session") is None
    page = client.get("/account/mfa/setup")
    assert page.status_code == 200 and "requires two-step login" in page.text
    assert post_form(client, "/account/mfa/setup", {}).status_code == 303
    html = client.get("/account/mfa/setup").text
    secret = re.search(r'id="totp-secret"[^>]*value="([A-Z2-7]+)"', html).group(1)
    assert client.get_cookie("outpost_session") is None
    done = post_form(client, "/account/mfa/setup/confirm", {"code": totp.code_at(secret, utcnow())})
    assert done.status_code == 200 and "recovery codes" in done.text
    assert client.get_cookie("outpost_session") is not None
    assert client.get_cookie(CHALLENGE) is None
    assert client.get("/").status_code == 200


def test_creating_a_token_in_the_ui_needs_fresh_mfa(app, db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    client = app.test_client()
    assert _two_step_login(client, OPERATOR, enrolled.code()).status_code == 303
    with db.unit_of_work() as session:  # the login's confirmation is now 20 minutes old
        session.execute(update(WebSession).values(mfa_verified_at=utcnow() - timedelta(minutes=20)))

    refused = post_form(client, "/tokens", {"name": "ci"})
    assert refused.status_code == 403
    assert "Confirm with your authenticator code" in refused.text
    assert 'action="/account/mfa/confirm?next=/tokens"' in refused.text

    wrong = post_form(client, "/account/mfa/confirm?next=/tokens", {"code": "000000"})
    assert wrong.status_code == 401
    confirmed = post_form(client, "/account/mfa/confirm?next=/tokens", {"code": enrolled.code(1)})
    assert confirmed.status_code == 303 and confirmed.headers["Location"] == "/tokens"
    assert post_form(client, "/tokens", {"name": "ci"}).status_code == 201
    assert "identity.mfa.verified" in _actions(db)


def test_the_api_answers_mfa_required_to_a_token_of_an_mfa_user(client, db, tenant):
    enrol(db, OPERATOR, tenant.org_id)
    response = client.post("/api/v1/tokens", json={"name": "x"}, headers=tenant.headers("operator"))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "urn:outpost:problem:mfa-required"
    # users without MFA are not affected
    ok = client.post("/api/v1/tokens", json={"name": "y"}, headers=tenant.headers("viewer"))
    assert ok.status_code == 201


def test_admin_requires_mfa_for_the_organization(admin, operator, db, tenant):
    page = operator.get("/account/mfa").text
    assert "Require MFA for everyone" not in page
    assert post_form(operator, "/account/mfa/policy", {"required": "1"}).status_code == 403
    assert "Require MFA for everyone in the organization" in admin.get("/account/mfa").text
    saved = post_form(admin, "/account/mfa/policy", {"required": "1", "next": "/account/mfa"})
    assert saved.status_code == 303
    with db.unit_of_work(write=False) as session:
        assert session.get(Organization, tenant.org_id).mfa_required
    assert "identity.organization.updated" in _actions(db)


def test_regenerate_and_disable_through_the_pages(app, db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    client = app.test_client()
    _two_step_login(client, OPERATOR, enrolled.code())
    wrong = post_form(client, "/account/mfa/recovery-codes", {"code": "000000"})
    assert wrong.status_code == 422
    fresh = post_form(client, "/account/mfa/recovery-codes", {"code": enrolled.recovery_codes[0]})
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "no-store"
    assert "previous codes no longer work" in fresh.text
    off = post_form(client, "/account/mfa/disable", {"code": enrolled.code(1)})
    assert off.status_code == 303 and "notice=mfa-disabled" in off.headers["Location"]
    assert "Set up an authenticator" in client.get(off.headers["Location"]).text
    assert Action.MFA_DISABLED.value in _actions(db)
