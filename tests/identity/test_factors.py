"""TOTP enrolment, recovery codes, the organization's requirement and the fresh-MFA check,
against a real database, with their audit events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from outpost.audit.actions import Action
from outpost.audit.models import AuditEvent
from outpost.clock import utcnow
from outpost.errors import BadRequest, Conflict, Forbidden, MfaRequired, Unauthenticated
from outpost.identity import factors, sessions, totp
from outpost.identity import service as identity
from outpost.identity.models import RecoveryCode, TotpFactor, WebSession
from outpost.identity.principal import Actor, Principal, RequestMeta
from support.mfa import SECRET_KEY, enrol, principal_of, user_actor

ADMIN = "admin@acme-solar.test"
OPERATOR = "operator@acme-solar.test"
LIFETIME = timedelta(hours=1)


def _events(db, action):
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == str(action))))


def _session_for(db, email, org_id):
    """A web session of the user, started through the service (no MFA yet)."""
    with db.unit_of_work() as session:
        user = identity.get_user_by_email(session, email)
        started = sessions.start_session(
            session, user, org_id, meta=RequestMeta(), lifetime=LIFETIME
        )
        return started.session.id


def test_enrolment_confirm_returns_recovery_codes_once(db, tenant):
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        enrolment = factors.begin_enrolment(session, actor, SECRET_KEY)
        assert not factors.has_mfa(session, actor.principal.user_id)
    assert enrolment.uri.startswith("otpauth://totp/Outpost%3Aoperator@acme-solar.test?")
    assert f"secret={enrolment.secret}" in enrolment.uri
    assert enrolment.qr_data_uri.startswith("data:image/svg+xml")
    with db.unit_of_work() as session:
        stored = session.get(TotpFactor, actor.principal.user_id)
        assert stored.confirmed_at is None
        assert enrolment.secret not in stored.secret_encrypted
        assert stored.secret_encrypted.startswith("v1:")
        code = totp.code_at(enrolment.secret, utcnow())
        codes = factors.confirm_enrolment(session, actor, code, SECRET_KEY)
    assert len(codes) == 10 and len(set(codes)) == 10
    with db.unit_of_work(write=False) as session:
        assert factors.has_mfa(session, actor.principal.user_id)
        hashes = set(session.scalars(select(RecoveryCode.code_hash)))
        assert hashes == {totp.recovery_code_hash(c) for c in codes}
        assert not any(c in h for c in codes for h in hashes)
        status = factors.mfa_status(session, actor.principal)
    assert status.enabled and status.recovery_codes_left == 10
    assert len(_events(db, Action.MFA_ENROLMENT_STARTED)) == 1
    [enrolled] = _events(db, Action.MFA_ENROLLED)
    assert enrolled.object_id == actor.principal.user_id
    assert json.loads(enrolled.after) == {"factor": "totp", "recovery_codes": 10}
    assert not any(c in (enrolled.after or "") for c in codes)
    # confirmed: nothing more to confirm, and no second enrolment over it
    with db.unit_of_work() as session, pytest.raises(Conflict):
        factors.confirm_enrolment(session, actor, code, SECRET_KEY)
    with db.unit_of_work() as session, pytest.raises(Conflict):
        factors.begin_enrolment(session, actor, SECRET_KEY)


def test_wrong_confirmation_code_leaves_the_factor_pending(db, tenant):
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        enrolment = factors.begin_enrolment(session, actor, SECRET_KEY)
    wrong = str((int(totp.code_at(enrolment.secret, utcnow())) + 1) % 1_000_000).zfill(6)
    with db.unit_of_work() as session, pytest.raises(BadRequest) as caught:
        factors.confirm_enrolment(session, actor, wrong, SECRET_KEY)
    assert [v.code for v in caught.value.violations] == ["mfa.code_invalid"]
    with db.unit_of_work(write=False) as session:
        assert not factors.has_mfa(session, actor.principal.user_id)
        assert factors.pending_enrolment(session, actor, SECRET_KEY).secret == enrolment.secret
    assert _events(db, Action.MFA_ENROLLED) == []


def test_restarting_enrolment_replaces_the_pending_secret(db, tenant):
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        first = factors.begin_enrolment(session, actor, SECRET_KEY)
        second = factors.begin_enrolment(session, actor, SECRET_KEY)
    assert first.secret != second.secret
    with db.unit_of_work() as session, pytest.raises(BadRequest):
        factors.confirm_enrolment(session, actor, totp.code_at(first.secret, utcnow()), SECRET_KEY)


def test_a_token_cannot_manage_factors(db, tenant):
    user = user_actor(db, OPERATOR, tenant.org_id).principal
    token = Actor(
        Principal(user.org_id, user.user_id, user.role, "token", kind="token", token_id="tok_x")
    )
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        factors.begin_enrolment(session, token, SECRET_KEY)


def test_totp_code_works_once(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    code = enrolled.code()
    with db.unit_of_work() as session:
        assert factors.verify_second_factor(session, actor, code, SECRET_KEY)
    with db.unit_of_work() as session:
        assert not factors.verify_second_factor(session, actor, code, SECRET_KEY)
        assert session.get(TotpFactor, enrolled.user_id).last_step >= totp.step_at(utcnow()) - 1
    with db.unit_of_work() as session:
        assert factors.verify_second_factor(session, actor, enrolled.code(1), SECRET_KEY)


def test_another_users_code_is_refused(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    enrol(db, ADMIN, tenant.org_id)
    admin = user_actor(db, ADMIN, tenant.org_id)
    with db.unit_of_work() as session:
        assert not factors.verify_second_factor(
            session, admin, enrolled.recovery_codes[0], SECRET_KEY
        )


def test_a_changed_app_key_leaves_only_recovery_codes(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        assert not factors.verify_second_factor(session, actor, enrolled.code(), "new-key")
        assert factors.verify_second_factor(session, actor, enrolled.recovery_codes[0], "new-key")


def test_recovery_code_works_once_and_is_audited(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    typed = enrolled.recovery_codes[3].upper().replace("-", " ")
    with db.unit_of_work() as session:
        assert factors.verify_second_factor(session, actor, typed, SECRET_KEY)
    with db.unit_of_work() as session:
        assert not factors.verify_second_factor(
            session, actor, enrolled.recovery_codes[3], SECRET_KEY
        )
        assert factors.mfa_status(session, actor.principal).recovery_codes_left == 9
    [used] = _events(db, Action.MFA_RECOVERY_USED)
    assert used.object_id == enrolled.user_id
    assert json.loads(used.after)["recovery_codes_left"] == 9


def test_regenerating_recovery_codes_needs_a_code_and_replaces_them(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(BadRequest):
        factors.regenerate_recovery_codes(session, actor, "000000", SECRET_KEY)
    with db.unit_of_work() as session:
        fresh = factors.regenerate_recovery_codes(session, actor, enrolled.code(), SECRET_KEY)
    assert len(fresh) == 10 and not set(fresh) & set(enrolled.recovery_codes)
    with db.unit_of_work() as session:
        assert not factors.verify_second_factor(
            session, actor, enrolled.recovery_codes[0], SECRET_KEY
        )
        assert factors.verify_second_factor(session, actor, fresh[0], SECRET_KEY)
    assert len(_events(db, Action.MFA_RECOVERY_CODES_REGENERATED)) == 1


def test_disable_needs_a_code_and_removes_the_factor(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(BadRequest):
        factors.disable_mfa(session, actor, "123456x", SECRET_KEY)
    with db.unit_of_work() as session:
        factors.disable_mfa(session, actor, enrolled.code(), SECRET_KEY)
    with db.unit_of_work(write=False) as session:
        assert not factors.has_mfa(session, enrolled.user_id)
        assert session.get(TotpFactor, enrolled.user_id) is None
        assert session.scalars(select(RecoveryCode)).all() == []
    [disabled] = _events(db, Action.MFA_DISABLED)
    assert disabled.object_id == enrolled.user_id and disabled.after is None


def test_disable_is_refused_while_the_organization_requires_mfa(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        factors.set_mfa_required(session, tenant.admin_actor, True)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(Forbidden, match="requires MFA"):
        factors.disable_mfa(session, actor, enrolled.code(), SECRET_KEY)


def test_setting_the_requirement_needs_member_manage_and_is_audited(db, tenant):
    operator = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        factors.set_mfa_required(session, operator, True)
    with db.unit_of_work() as session:
        factors.set_mfa_required(session, tenant.admin_actor, True)
        factors.set_mfa_required(session, tenant.admin_actor, True)  # no change, no event
        assert factors.org_requires_mfa(session, tenant.org_id)
    [event] = _events(db, Action.ORG_UPDATED)
    assert json.loads(event.before)["mfa_required"] is False
    assert json.loads(event.after)["mfa_required"] is True
    assert event.object_type == "organization" and event.object_id == tenant.org_id


def test_fresh_mfa_passes_for_users_without_mfa_and_system_actors(db, tenant):
    operator = principal_of(db, OPERATOR, tenant.org_id)
    system = identity.system_actor(tenant.org_id).principal
    with db.unit_of_work(write=False) as session:
        factors.require_fresh_mfa(session, operator, None)
        factors.require_fresh_mfa(session, system, None)


def test_fresh_mfa_needs_a_recent_confirmation_in_the_web_session(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    operator = principal_of(db, OPERATOR, tenant.org_id)
    session_id = _session_for(db, OPERATOR, tenant.org_id)
    with db.unit_of_work(write=False) as session, pytest.raises(MfaRequired) as caught:
        factors.require_fresh_mfa(session, operator, session_id)
    assert caught.value.enrolled
    with db.unit_of_work() as session:
        factors.confirm_fresh_mfa(session, Actor(operator), session_id, enrolled.code(), SECRET_KEY)
    with db.unit_of_work(write=False) as session:
        factors.require_fresh_mfa(session, operator, session_id)
        # another session of the user, or none, is not verified
        with pytest.raises(MfaRequired):
            factors.require_fresh_mfa(session, operator, None)
    [verified] = _events(db, Action.MFA_VERIFIED)
    assert json.loads(verified.after) == {"session_id": session_id}
    with db.unit_of_work() as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id == session_id)
            .values(mfa_verified_at=utcnow() - timedelta(minutes=15, seconds=5))
        )
    with db.unit_of_work(write=False) as session, pytest.raises(MfaRequired):
        factors.require_fresh_mfa(session, operator, session_id)


def test_confirming_another_users_session_is_refused(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    admin_session = _session_for(db, ADMIN, tenant.org_id)
    operator = user_actor(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        factors.confirm_fresh_mfa(session, operator, admin_session, enrolled.code(), SECRET_KEY)


def test_a_token_of_an_mfa_user_never_passes(db, tenant):
    enrol(db, OPERATOR, tenant.org_id)
    user = principal_of(db, OPERATOR, tenant.org_id)
    token = Principal(user.org_id, user.user_id, user.role, "t", kind="token", token_id="tok_x")
    session_id = _session_for(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session:
        factors.mark_verified(session, session_id)
    with db.unit_of_work(write=False) as session, pytest.raises(MfaRequired, match="token"):
        factors.require_fresh_mfa(session, token, session_id)


def test_an_organization_requirement_without_a_factor_asks_for_enrolment(db, tenant):
    with db.unit_of_work() as session:
        factors.set_mfa_required(session, tenant.admin_actor, True)
    operator = principal_of(db, OPERATOR, tenant.org_id)
    with db.unit_of_work(write=False) as session, pytest.raises(MfaRequired) as caught:
        factors.require_fresh_mfa(session, operator, _session_for(db, OPERATOR, tenant.org_id))
    assert not caught.value.enrolled


def test_creating_a_token_needs_fresh_mfa(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    actor = user_actor(db, OPERATOR, tenant.org_id)
    session_id = _session_for(db, OPERATOR, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(MfaRequired):
        identity.create_token(session, actor, name="ci", web_session_id=session_id)
    with db.unit_of_work() as session:
        factors.confirm_fresh_mfa(session, actor, session_id, enrolled.code(), SECRET_KEY)
    with db.unit_of_work() as session:
        issued = identity.create_token(session, actor, name="ci", web_session_id=session_id)
    assert issued.token.user_id == enrolled.user_id


def test_changing_the_requirement_needs_fresh_mfa_of_an_enrolled_admin(db, tenant):
    enrol(db, ADMIN, tenant.org_id)
    with db.unit_of_work() as session, pytest.raises(MfaRequired):
        factors.set_mfa_required(session, user_actor(db, ADMIN, tenant.org_id), True)


# --- the login steps --------------------------------------------------------------------


def _log_in(db, email):
    with db.unit_of_work() as session:
        return sessions.log_in(
            session,
            email=email,
            password="correct horse battery",
            meta=RequestMeta(),
            lifetime=LIFETIME,
        )


def test_log_in_without_mfa_starts_a_session(db, tenant):
    started = _log_in(db, OPERATOR)
    assert isinstance(started, sessions.StartedSession)
    assert started.session.mfa_verified_at is None


def test_log_in_with_mfa_waits_for_the_second_factor(db, tenant):
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    pending = _log_in(db, OPERATOR)
    assert pending == sessions.PendingLogin(enrolled.user_id, tenant.org_id, enrolled=True)
    with db.unit_of_work(write=False) as session:
        assert session.scalars(select(WebSession)).all() == []
    with db.unit_of_work() as session, pytest.raises(Unauthenticated):
        sessions.log_in_second_factor(
            session,
            pending,
            code="000000",
            secret_key=SECRET_KEY,
            meta=RequestMeta(),
            lifetime=LIFETIME,
        )
    with db.unit_of_work() as session:
        started = sessions.log_in_second_factor(
            session,
            pending,
            code=enrolled.code(),
            secret_key=SECRET_KEY,
            meta=RequestMeta(),
            lifetime=LIFETIME,
        )
        assert started.session.mfa_verified_at is not None
    [event] = [
        e
        for e in _events(db, Action.SESSION_STARTED)
        if json.loads(e.after)["session_id"] == started.session.id
    ]
    assert json.loads(event.after)["mfa"] is True


def test_log_in_in_an_organization_requiring_mfa_goes_to_enrolment(db, tenant):
    with db.unit_of_work() as session:
        factors.set_mfa_required(session, tenant.admin_actor, True)
    pending = _log_in(db, OPERATOR)
    assert isinstance(pending, sessions.PendingLogin) and not pending.enrolled
    meta = RequestMeta()
    with db.unit_of_work() as session:
        actor = sessions.login_actor(session, pending, meta)
        enrolment = factors.begin_enrolment(session, actor, SECRET_KEY)
    with db.unit_of_work() as session:
        started, codes = sessions.log_in_enrolling(
            session,
            pending,
            code=totp.code_at(enrolment.secret, utcnow()),
            secret_key=SECRET_KEY,
            meta=meta,
            lifetime=LIFETIME,
        )
    assert len(codes) == 10 and started.session.mfa_verified_at is not None
