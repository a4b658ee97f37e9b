"""MFA pages: your authenticator (set up, recovery codes, disable), the organization's
requirement, the second login step, and confirming a code before a sensitive action.

The second login step carries no session: after the right password, a signed, 5-minute
challenge cookie (itsdangerous, salt ``outpost.mfa``) names the user, their organization
and where to go next. The session starts only once a code (or, for an organization that
requires MFA, a new authenticator) is confirmed. What the cookie allows is decided afresh
from the database on every request (has the user an authenticator or not).

A sensitive action refused with :class:`MfaRequired` renders, on pages, the "Confirm with
your authenticator code" form (status 403) that returns to the page; the JSON API answers
problem+json with type ``urn:outpost:problem:mfa-required``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from outpost.errors import BadRequest, MfaRequired, TooManyRequests, Unauthenticated
from outpost.identity import factors, sessions
from outpost.identity.principal import Actor
from outpost.web import auth
from outpost.web.context import actor, principal, request_meta, services, transaction
from outpost.web.forms import local_path
from outpost.web.problems import problem, status_of, wants_json

bp = Blueprint("mfa", __name__, template_folder="templates")

CHALLENGE_COOKIE = "outpost_mfa_challenge"
CHALLENGE_SALT = "outpost.mfa"
CHALLENGE_MAX_AGE = timedelta(minutes=5)


# --- the login challenge ----------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(services().settings.secret_key, salt=CHALLENGE_SALT)


def challenge(pending: sessions.PendingLogin, target: str) -> Response:
    """After the right password: the challenge cookie, and on to the code or to enrolment."""
    payload = {
        "u": pending.user_id,
        "o": pending.org_id,
        "n": secrets.token_urlsafe(12),
        "next": target,
    }
    step = "mfa.login_step" if pending.enrolled else "mfa.setup"
    response: Response = redirect(url_for(step), 303)  # type: ignore[assignment]
    response.set_cookie(
        CHALLENGE_COOKIE,
        _serializer().dumps(payload),
        max_age=int(CHALLENGE_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=services().settings.cookie_secure,
        path="/",
    )
    return response


def _read_challenge() -> tuple[sessions.PendingLogin, str] | None:
    raw = request.cookies.get(CHALLENGE_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=int(CHALLENGE_MAX_AGE.total_seconds()))
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "uo"):
        return None
    with transaction() as session:
        enrolled = factors.has_mfa(session, data["u"])
    pending = sessions.PendingLogin(data["u"], data["o"], enrolled)
    return pending, local_path(str(data.get("next") or "/"))


def _logged_in(started: sessions.StartedSession, response: Response) -> Response:
    auth.set_session_cookie(response, started.secret)
    response.delete_cookie(CHALLENGE_COOKIE, path="/")
    return response


def _lifetime() -> timedelta:
    return timedelta(hours=services().settings.session_lifetime_hours)


def _secret_key() -> str:
    return services().settings.secret_key


def _count_failure(user_id: str) -> None:
    with transaction() as session:
        factors.record_failed_code(session, user_id, request_meta())


def _code() -> str:
    return request.form.get("code", "")


@bp.route("/login/mfa", methods=["GET", "POST"])
def login_step() -> Response | tuple[str, int]:
    found = _read_challenge()
    if found is None or not found[0].enrolled:
        return redirect(url_for("web.login"), 303)  # type: ignore[return-value]
    pending, target = found
    if request.method == "GET":
        return render_template("identity/mfa_login.html", error=None), 200
    auth.check_csrf()
    try:
        with transaction() as session:
            started = sessions.log_in_second_factor(
                session,
                pending,
                code=_code(),
                secret_key=_secret_key(),
                meta=request_meta(),
                lifetime=_lifetime(),
            )
    except Unauthenticated:
        _count_failure(pending.user_id)
        error = "Wrong code, or a code already used. Try the next one."
        return render_template("identity/mfa_login.html", error=error), 401
    except TooManyRequests as exc:
        page = render_template("identity/mfa_login.html", error=exc.detail)
        return Response(page, 429, {"Retry-After": str(exc.retry_after_s)})
    return _logged_in(started, redirect(target, 303))  # type: ignore[arg-type]


# --- setting up an authenticator (logged in, or at login when the org requires it) -----


def _enrolling_actor() -> tuple[Actor, sessions.PendingLogin | None, str]:
    """Who is setting up: the logged-in user, or the user of a login challenge."""
    if g.principal is not None:
        return actor(), None, url_for(".status_page")
    found = _read_challenge()
    if found is None or found[0].enrolled:
        raise Unauthenticated("Log in first.")
    pending, target = found
    with transaction() as session:
        return sessions.login_actor(session, pending, request_meta()), pending, target


def _render_setup(error: BadRequest | None = None, status: int = 200) -> Response:
    who, pending, _ = _enrolling_actor()
    with transaction() as session:
        enrolment = factors.pending_enrolment(session, who, _secret_key())
        required = factors.org_requires_mfa(session, who.org_id)
    html = render_template(
        "identity/mfa_setup.html",
        enrolment=enrolment,
        at_login=pending is not None,
        required=required,
        error=error,
    )
    return _no_store(Response(html, status, mimetype="text/html"))


@bp.get("/account/mfa/setup")
def setup() -> Response:
    return _render_setup()


@bp.post("/account/mfa/setup")
def begin_setup() -> Response:
    auth.check_csrf()
    who, _, _ = _enrolling_actor()
    with transaction() as session:
        factors.begin_enrolment(session, who, _secret_key())
    return redirect(url_for(".setup"), 303)  # type: ignore[return-value]


@bp.post("/account/mfa/setup/confirm")
def confirm_setup() -> Response:
    auth.check_csrf()
    who, pending, target = _enrolling_actor()
    started = None
    try:
        with transaction() as session:
            if pending is None:
                codes = factors.confirm_enrolment(
                    session, who, _code(), _secret_key(), web_session_id=g.web_session_id
                )
            else:
                started, codes = sessions.log_in_enrolling(
                    session,
                    pending,
                    code=_code(),
                    secret_key=_secret_key(),
                    meta=request_meta(),
                    lifetime=_lifetime(),
                )
    except BadRequest as exc:
        return _render_setup(exc, 422)
    page = _codes_page(codes, target, enrolled=True)
    return page if started is None else _logged_in(started, page)


def _codes_page(codes: list[str], target: str, *, enrolled: bool) -> Response:
    html = render_template(
        "identity/mfa_recovery_codes.html", codes=codes, target=target, enrolled=enrolled
    )
    return _no_store(Response(html, 200, mimetype="text/html"))


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- your authenticator -----------------------------------------------------------------


def _render_status(error: BadRequest | None = None, status: int = 200) -> tuple[str, int]:
    with transaction() as session:
        state = factors.mfa_status(session, principal())
    return render_template("identity/mfa_status.html", state=state, error=error), status


@bp.get("/account/mfa")
def status_page() -> tuple[str, int]:
    return _render_status()


@bp.post("/account/mfa/recovery-codes")
def regenerate() -> Response | tuple[str, int]:
    try:
        with transaction() as session:
            codes = factors.regenerate_recovery_codes(session, actor(), _code(), _secret_key())
    except BadRequest as exc:
        _count_failure(principal().user_id)
        return _render_status(exc, 422)
    return _codes_page(codes, url_for(".status_page"), enrolled=False)


@bp.post("/account/mfa/disable")
def disable() -> Response | tuple[str, int]:
    try:
        with transaction() as session:
            factors.disable_mfa(session, actor(), _code(), _secret_key())
    except BadRequest as exc:
        _count_failure(principal().user_id)
        return _render_status(exc, 422)
    return redirect(url_for(".status_page", notice="mfa-disabled"), 303)  # type: ignore[return-value]


@bp.post("/account/mfa/policy")
def policy() -> Response:
    required = request.form.get("required") == "1"
    with transaction() as session:
        factors.set_mfa_required(session, actor(), required, web_session_id=g.web_session_id)
    return redirect(url_for(".status_page", notice="mfa-policy-saved"), 303)  # type: ignore[return-value]


# --- fresh MFA before a sensitive action ------------------------------------------------


def _render_confirm(
    target: str, error: str | None, status: int, *, enrolled: bool = True, detail: str = ""
) -> Response:
    html = render_template(
        "identity/mfa_confirm.html", target=target, error=error, enrolled=enrolled, detail=detail
    )
    return Response(html, status, mimetype="text/html")


@bp.route("/account/mfa/confirm", methods=["GET", "POST"])
def confirm() -> Response:
    target = local_path(request.args.get("next"))
    if request.method == "GET":
        return _render_confirm(target, None, 200)
    try:
        with transaction() as session:
            factors.confirm_fresh_mfa(session, actor(), g.web_session_id, _code(), _secret_key())
    except BadRequest:
        _count_failure(principal().user_id)
        return _render_confirm(target, "Wrong code, or a code already used.", 401)
    return redirect(target, 303)  # type: ignore[return-value]


@bp.app_errorhandler(MfaRequired)
def mfa_required(exc: MfaRequired) -> Response:
    """Pages: the confirm form, returning to the page; the API: problem+json (403)."""
    status = status_of(exc)
    if wants_json():
        return problem(status, exc.type_slug, exc.title, exc.detail)
    if request.method == "GET":
        target = request.full_path.rstrip("?")
    else:  # a form post: back to the page the form was on (named by its ``next`` field)
        target = local_path(request.form.get("next") or request.path)
    return _render_confirm(target, None, status, enrolled=exc.enrolled, detail=exc.detail)
