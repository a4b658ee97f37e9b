"""Invitation pages: the public page behind a link (what is offered, and the form that
accepts it), and the inviter's "Invite someone" form.

``/invite/<secret>`` is in the authentication allowlist: holding the link is what lets
its holder in, once. The page is never cached and sends no referrer; the access log
blanks the secret (``server.RedactingLogger``). Accepting logs the new member in the way
the login page does: straight in, or on to the second factor (or to setting one up when
the organization requires MFA) through the same challenge cookie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from outpost.clock import utcnow
from outpost.errors import BadRequest, Conflict, RuleViolation, TooManyRequests, Unauthenticated
from outpost.identity import invitations, mfa_views, sessions
from outpost.identity.invitation_schemas import InvitationCreate
from outpost.validation import Violation
from outpost.web import auth, forms
from outpost.web.context import actor, principal, request_meta, services, transaction

bp = Blueprint("invitations", __name__, template_folder="templates")

ACCEPT_FIELDS = ("display_name", "password", "confirm")
INVITE_FIELDS = ("email", "role", "site_id", "asset_id", "duration_minutes", "reason")
#: The durations the form offers, in minutes (the API takes any, up to the maximum).
DURATIONS = (
    (60, "1 hour"),
    (240, "4 hours"),
    (480, "8 hours"),
    (1440, "1 day"),
    (4320, "3 days"),
    (10080, "7 days"),
)


def _private(html: str, status: int) -> Response:
    """A page whose URL or body holds a secret: never cached, never sent as a referrer."""
    response = Response(html, status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- the public page behind a link ------------------------------------------------------


def _render_offer(
    secret: str,
    *,
    violations: Sequence[Violation] = (),
    error: str | None = None,
    status: int = 200,
) -> Response:
    with transaction() as session:
        view = invitations.describe(session, secret)
        html = render_template(
            "identity/invitation_detail.html",
            view=view,
            secret=secret,
            error=error,
            errors=forms.split_violations(violations, None, ACCEPT_FIELDS),
            display_name=request.form.get("display_name", ""),
            names={},
        )
    return _private(html, status)


@bp.get("/invite/<secret>")
def invitation(secret: str) -> Response:
    return _render_offer(secret)


@bp.post("/invite/<secret>")
def accept(secret: str) -> Response:
    auth.check_csrf()  # public, but a form: still CSRF-protected
    form, meta = request.form, request_meta()
    try:
        with transaction() as session:
            accepted = invitations.accept(
                session,
                secret,
                display_name=form.get("display_name", ""),
                password=form.get("password", ""),
                confirm=form.get("confirm"),
                meta=meta,
            )
            started = invitations.start_login(
                session, accepted, meta=meta, lifetime=_session_lifetime()
            )
    except (RuleViolation, Conflict) as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        return _render_offer(secret, violations=exc.violations, error=exc.detail, status=status)
    except Unauthenticated:
        with transaction() as session:
            email = invitations.describe(session, secret).invitation.email
            sessions.record_failed_login(session, email, meta)
        return _render_offer(secret, error="Wrong password for your account.", status=401)
    except TooManyRequests as exc:
        refused = _render_offer(secret, error=exc.detail, status=429)
        refused.headers["Retry-After"] = str(exc.retry_after_s)
        return refused
    target = _landing(accepted)
    if isinstance(started, sessions.PendingLogin):  # no session before the second factor
        return mfa_views.challenge(started, target)
    response: Response = redirect(target, 303)  # type: ignore[assignment]
    auth.set_session_cookie(response, started.secret)
    return response


def _session_lifetime() -> timedelta:
    return timedelta(hours=services().settings.session_lifetime_hours)


def _landing(accepted: invitations.Accepted) -> str:
    """Straight to what the grant is about: its asset, its site, or the fleet."""
    grant = accepted.grant
    if grant.asset_id is not None:
        return url_for("inventory.asset", asset_id=grant.asset_id)
    if grant.site_id is not None:
        return url_for("inventory.site", site_id=grant.site_id)
    return "/"


# --- inviting ---------------------------------------------------------------------------


def _render_form(
    error: BadRequest | RuleViolation | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with transaction() as session:
        who = principal()
        options = invitations.invite_options(session, who)
        mine = invitations.list_invitations(session, who, invitations.InvitationFilter(limit=20))
        html = render_template(
            "identity/invitation_form.html",
            options=options,
            durations=[(m, label) for m, label in DURATIONS if m <= options.max_hours * 60],
            invitations=mine[:20],
            state_of=invitations.state_of,
            now=utcnow(),
            values=values or {"duration_minutes": "480"},
            errors=forms.split_violations(error.violations, None, INVITE_FIELDS)
            if error
            else forms.NO_ERRORS,
            names={},
        )
    return html, status


@bp.get("/access/invite")
def invite_form() -> tuple[str, int]:
    return _render_form()


@bp.post("/access/invite")
def create_invitation() -> Response | tuple[str, int]:
    fields = forms.query_values(request.form, INVITE_FIELDS)
    try:
        body = forms.parse(InvitationCreate, fields)
        with transaction() as session:
            issued = invitations.invite(
                session,
                actor(body.reason),
                **body.model_dump(),
                web_session_id=g.web_session_id,
            )
            html = render_template(
                "identity/invitation_created.html",
                issued=issued,
                url=url_for("invitations.invitation", secret=issued.secret, _external=True),
            )
    except (BadRequest, RuleViolation) as exc:
        return _render_form(exc, fields, 422)
    return _private(html, 201)
