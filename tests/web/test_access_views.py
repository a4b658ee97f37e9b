"""Access pages: my access, who has access to a site until when (grant, revoke, end
early), access requests (ask, approve, deny, cancel), members and roles; every action
through the services, audited, and refused forms shown beside their fields."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from outpost.audit.models import AuditEvent
from outpost.clock import utcnow
from outpost.db import Database
from outpost.identity.models import AccessRequest, Grant, Membership, Organization, WebSession
from support.grants import add_member, audit_count, grant_count, user_id_of
from support.mfa import enrol
from support.web import SmallFleet, build_small_fleet, csrf, log_in, post_form

VIEWER = "viewer@acme-solar.test"
OPERATOR = "operator@acme-solar.test"
REASON = "Replace the inverter fuse"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def grant_row(db: Database, grant_id: str) -> Grant:
    with db.unit_of_work(write=False) as session:
        found = session.get(Grant, grant_id)
        assert found is not None
        session.expunge(found)
        return found


def grants_of(db: Database, user_id: str) -> list[Grant]:
    with db.unit_of_work(write=False) as session:
        found = list(session.scalars(select(Grant).where(Grant.user_id == user_id)))
        session.expunge_all()
        return found


def events(db: Database, action: str) -> list[AuditEvent]:
    with db.unit_of_work(write=False) as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return found


def grant_form(user_id: str, **fields: str) -> dict[str, str]:
    return {"user_id": user_id, "role": "operator", "hours": "4", "reason": REASON, **fields}


def give_on_site(operator: FlaskClient, site_id: str, user_id: str, **fields: str) -> Any:
    """Post the grant form as the page sends it (``next``: where a fresh-MFA check returns)."""
    form = {**grant_form(user_id, **fields), "next": f"/sites/{site_id}/access"}
    return post_form(operator, f"/sites/{site_id}/access/grants", form)


def assert_forms_carry_csrf(html: str) -> None:
    posts = re.findall(r'<form method="post".*?</form>', html, flags=re.S)
    assert posts
    for form in posts:
        assert 'name="csrf_token" value="' in form, form


def assert_no_inline_code(html: str) -> None:
    assert "<script" not in html and "style=" not in html and "<style" not in html


# --- my access --------------------------------------------------------------------------


def test_a_viewer_sees_their_access_with_no_grants(viewer: FlaskClient, tenant: Any) -> None:
    page = viewer.get("/access")
    html = text(page)
    assert page.status_code == 200
    assert "Standing role" in html and 'class="role role-viewer">viewer</span>' in html
    assert "No grants: you have your standing role only." in html
    assert "You have not asked for access." in html
    assert 'action="/access/requests"' in html and 'name="duration' not in html
    assert '<a href="/access" aria-current="page">Access</a>' in html
    assert_forms_carry_csrf(html)
    assert_no_inline_code(html)


def test_the_site_page_links_to_its_access_page(viewer: FlaskClient, fleet: SmallFleet) -> None:
    site_id = fleet.site["id"]
    assert f'href="/sites/{site_id}/access">Access</a>' in text(viewer.get(f"/sites/{site_id}"))


# --- granting, ending, revoking ---------------------------------------------------------


def test_an_operator_grants_the_viewer_on_a_site_and_it_shows_on_both_pages(
    operator: FlaskClient,
    viewer: FlaskClient,
    client: FlaskClient,
    db: Database,
    tenant: Any,
    fleet: SmallFleet,
) -> None:
    site_id = fleet.site["id"]
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    page = operator.get(f"/sites/{site_id}/access")
    html = text(page)
    assert page.status_code == 200 and "Grant access" in html
    assert f'<option value="{viewer_id}">{VIEWER} (viewer)</option>' in html
    assert f'<option value="{fleet.controller["id"]}">' in html  # an asset subtree
    assert_forms_carry_csrf(html)
    assert_no_inline_code(html)

    done = give_on_site(operator, site_id, viewer_id)
    assert done.status_code == 303
    assert done.headers["Location"] == f"/sites/{site_id}/access?notice=grant-created"
    [grant] = grants_of(db, viewer_id)
    assert grant.site_id == site_id and grant.asset_id is None and grant.role == "operator"
    assert grant.expires_at is not None
    assert timedelta(hours=3, minutes=59) < grant.expires_at - utcnow() <= timedelta(hours=4)
    until = grant.expires_at.strftime("%Y-%m-%d %H:%M UTC")

    shown = text(operator.get(done.headers["Location"]))
    assert "Access was granted." in shown
    row = re.search(rf'<tr id="grant-{grant.id}".*?</tr>', shown, flags=re.S)
    assert row is not None
    assert VIEWER in row.group(0) and REASON in row.group(0) and until in row.group(0)
    assert OPERATOR in row.group(0) and "active" in row.group(0) and "3 h 59 min" in row.group(0)
    assert f'action="/sites/{site_id}/access/grants/{grant.id}/revoke"' in row.group(0)

    mine = text(viewer.get("/access"))
    assert until in mine and REASON in mine and f'href="/sites/{site_id}"' in mine
    assert f'action="/access/grants/{grant.id}/end"' in mine and "I'm done" in mine
    [event] = events(db, "identity.grant.created")
    assert event.object_id == grant.id and event.reason == REASON


def test_the_holder_ends_their_grant_early(
    operator: FlaskClient,
    viewer: FlaskClient,
    client: FlaskClient,
    db: Database,
    tenant: Any,
    fleet: SmallFleet,
) -> None:
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    assert give_on_site(operator, fleet.site["id"], viewer_id).status_code == 303
    [grant] = grants_of(db, viewer_id)

    ended = post_form(viewer, f"/access/grants/{grant.id}/end", {})
    assert ended.status_code == 303 and ended.headers["Location"] == "/access?notice=grant-ended"
    assert grant_row(db, grant.id).revoked_by == viewer_id
    html = text(viewer.get(ended.headers["Location"]))
    assert "Your grant has ended." in html and "ended early" in html
    assert f'action="/access/grants/{grant.id}/end"' not in html
    assert len(events(db, "identity.grant.ended")) == 1
    again = post_form(viewer, f"/access/grants/{grant.id}/end", {})
    assert again.status_code == 409


def test_the_operator_revokes_a_grant_with_a_reason(
    operator: FlaskClient,
    viewer: FlaskClient,
    client: FlaskClient,
    db: Database,
    tenant: Any,
    fleet: SmallFleet,
) -> None:
    site_id = fleet.site["id"]
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    on_asset = give_on_site(operator, site_id, viewer_id, asset_id=fleet.controller["id"])
    assert on_asset.status_code == 303
    [grant] = grants_of(db, viewer_id)
    assert grant.asset_id == fleet.controller["id"] and grant.site_id is None
    html = text(operator.get(f"/sites/{site_id}/access"))
    assert f'href="/assets/{fleet.controller["id"]}">{fleet.controller["name"]}</a>' in html

    path = f"/sites/{site_id}/access/grants/{grant.id}/revoke"
    refused = post_form(operator, path, {"reason": "  "})
    assert refused.status_code == 422 and "Give a reason." in text(refused)
    assert grant_row(db, grant.id).revoked_at is None

    revoked = post_form(operator, path, {"reason": "Job finished"})
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == f"/sites/{site_id}/access?notice=grant-revoked"
    stored = grant_row(db, grant.id)
    assert stored.revoke_reason == "Job finished" and stored.revoked_by is not None
    html = text(operator.get(revoked.headers["Location"]))
    assert "The grant was revoked." in html and "Job finished" in html
    [event] = events(db, "identity.grant.revoked")
    assert event.object_id == grant.id and event.reason == "Job finished"
    assert "revoked" in text(viewer.get("/access"))


def test_a_grant_without_a_reason_is_refused_beside_the_field_and_writes_nothing(
    operator: FlaskClient, client: FlaskClient, db: Database, tenant: Any, fleet: SmallFleet
) -> None:
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    site_id = fleet.site["id"]
    before = (grant_count(db), audit_count(db))
    refused = give_on_site(operator, site_id, viewer_id, reason="")
    html = text(refused)
    assert refused.status_code == 422
    assert 'id="grant-reason-error">Give a reason (1-500).</span>' in html
    assert f'<option value="{viewer_id}" selected>' in html  # the values sent are kept
    too_long = give_on_site(operator, site_id, viewer_id, hours="1000")
    assert too_long.status_code == 422
    assert 'id="grant-hours-error">A grant lasts at most 7 days' in text(too_long)
    no_hours = give_on_site(operator, site_id, viewer_id, hours="soon")
    assert no_hours.status_code == 422 and 'id="grant-hours-error"' in text(no_hours)
    assert (grant_count(db), audit_count(db)) == before


def test_a_viewer_sees_no_grant_form_and_their_post_is_refused(
    viewer: FlaskClient, client: FlaskClient, db: Database, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    operator_id = user_id_of(client, tenant.headers("operator"))
    html = text(viewer.get(f"/sites/{site_id}/access"))
    assert "Grant access" not in html and "/revoke" not in html
    assert OPERATOR in html and "Organization-wide" in html  # members reach every site
    refused = give_on_site(viewer, site_id, operator_id)
    assert refused.status_code == 403 and "grant.create" in text(refused)
    assert grant_count(db) == 0


def test_another_tenants_site_access_page_is_not_found(
    operator: FlaskClient, client: FlaskClient, db: Database, other_tenant: Any, tenant: Any
) -> None:
    theirs = build_small_fleet(client, other_tenant.headers(), code="X1")
    site_id = theirs.site["id"]
    assert operator.get(f"/sites/{site_id}/access").status_code == 404
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    assert give_on_site(operator, site_id, viewer_id).status_code == 404
    assert operator.get("/sites/sit_missing/access").status_code == 404
    assert grant_count(db) == 0


def test_giving_access_asks_for_a_fresh_second_factor_and_comes_back(
    app: Flask, db: Database, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    enrolled = enrol(db, OPERATOR, tenant.org_id)
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    site_id = fleet.site["id"]
    operator = app.test_client()
    log_in(operator, OPERATOR)
    assert post_form(operator, "/login/mfa", {"code": enrolled.code()}).status_code == 303
    with db.unit_of_work() as session:  # the login's confirmation is now 20 minutes old
        session.execute(update(WebSession).values(mfa_verified_at=utcnow() - timedelta(minutes=20)))
    refused = give_on_site(operator, site_id, viewer_id)
    assert refused.status_code == 403
    assert f'action="/account/mfa/confirm?next=/sites/{site_id}/access"' in text(refused)
    assert grant_count(db) == 0
    back = post_form(
        operator, f"/account/mfa/confirm?next=/sites/{site_id}/access", {"code": enrolled.code(1)}
    )
    assert back.status_code == 303 and back.headers["Location"] == f"/sites/{site_id}/access"
    assert give_on_site(operator, site_id, viewer_id).status_code == 303
    assert grant_count(db) == 1


# --- access requests --------------------------------------------------------------------


def ask(viewer: FlaskClient, site_id: str, **fields: str) -> Any:
    form = {"role": "operator", "site_id": site_id, "hours": "2", "reason": "Night shift", **fields}
    return post_form(viewer, "/access/requests", form)


def request_ids(db: Database) -> list[str]:
    with db.unit_of_work(write=False) as session:
        return list(session.scalars(select(AccessRequest.id).order_by(AccessRequest.id)))


def test_request_then_approve_through_the_pages(
    operator: FlaskClient,
    viewer: FlaskClient,
    client: FlaskClient,
    db: Database,
    tenant: Any,
    fleet: SmallFleet,
) -> None:
    site_id = fleet.site["id"]
    mine = text(viewer.get("/access"))
    assert f'<option value="{site_id}">Plant P1 (P1)</option>' in mine  # the site picker
    asked = ask(viewer, site_id)
    assert (
        asked.status_code == 303 and asked.headers["Location"] == "/access?notice=request-created"
    )
    [request_id] = request_ids(db)
    html = text(viewer.get(asked.headers["Location"]))
    assert "Your access request was sent." in html and "Night shift" in html and "pending" in html
    assert f'action="/access/requests/{request_id}/cancel"' in html

    queue = operator.get("/access/requests")
    page = text(queue)
    assert queue.status_code == 200 and VIEWER in page and "Night shift" in page
    assert f'action="/access/requests/{request_id}/approve"' in page
    assert f'formaction="/access/requests/{request_id}/deny"' in page
    assert_forms_carry_csrf(page)
    assert_no_inline_code(page)

    unanswered = post_form(operator, f"/access/requests/{request_id}/approve", {"reason": ""})
    assert unanswered.status_code == 422 and f'id="{request_id}-reason-error"' in text(unanswered)
    approved = post_form(operator, f"/access/requests/{request_id}/approve", {"reason": "Go"})
    assert approved.status_code == 303
    assert approved.headers["Location"] == "/access/requests?notice=request-approved"
    answered = text(operator.get(approved.headers["Location"]))
    assert "No request is waiting for you." in answered and "approved" in answered

    viewer_id = user_id_of(client, tenant.headers("viewer"))
    [grant] = grants_of(db, viewer_id)
    assert grant.site_id == site_id and grant.expires_at is not None
    assert timedelta(hours=1, minutes=59) < grant.expires_at - grant.starts_at <= timedelta(hours=2)
    mine = text(viewer.get("/access"))
    assert "approved" in mine and grant.expires_at.strftime("%Y-%m-%d %H:%M UTC") in mine
    assert f'action="/access/grants/{grant.id}/end"' in mine
    for action in (
        "identity.access_request.created",
        "identity.access_request.approved",
        "identity.grant.created",
    ):
        assert len(events(db, action)) == 1, action


def test_deny_and_cancel_through_the_pages(
    operator: FlaskClient, viewer: FlaskClient, db: Database, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    assert ask(viewer, site_id).status_code == 303
    assert ask(viewer, site_id, reason="Second").status_code == 303
    first, second = request_ids(db)
    denied = post_form(operator, f"/access/requests/{first}/deny", {"reason": "Not this week"})
    assert denied.status_code == 303
    assert post_form(viewer, f"/access/requests/{second}/cancel", {}).status_code == 303
    html = text(viewer.get("/access"))
    assert "denied" in html and "Not this week" in html and "cancelled" in html
    assert len(events(db, "identity.access_request.denied")) == 1
    assert len(events(db, "identity.access_request.cancelled")) == 1
    again = post_form(operator, f"/access/requests/{first}/deny", {"reason": "again"})
    assert again.status_code == 409  # no longer pending
    assert (
        post_form(viewer, f"/access/requests/{first}/approve", {"reason": "me"}).status_code == 403
    )


def test_a_refused_request_is_shown_beside_its_fields(
    viewer: FlaskClient, db: Database, fleet: SmallFleet
) -> None:
    refused = ask(viewer, fleet.site["id"], reason="", hours="500")
    html = text(refused)
    assert refused.status_code == 422
    assert 'id="request-reason-error"' in html and 'id="request-hours-error"' in html
    assert request_ids(db) == []
    unknown = ask(viewer, "sit_missing")
    assert unknown.status_code == 404 and request_ids(db) == []


def test_a_member_with_no_role_asks_by_id_and_works_once_approved(
    app: Flask, operator: FlaskClient, db: Database, tenant: Any, fleet: SmallFleet
) -> None:
    nobody = add_member(db, tenant, "contractor", "none")
    member = app.test_client()
    assert log_in(member, nobody.email).status_code == 303
    site_id = fleet.site["id"]
    page = member.get("/access")
    assert page.status_code == 200 and "gives nothing" in text(page)
    assert f'<option value="{site_id}">' not in text(page)  # sees no site to pick
    assert member.get(f"/sites/{site_id}/access").status_code == 404
    assert ask(member, site_id, role="technician").status_code == 303  # the id, typed
    [request_id] = request_ids(db)
    approved = post_form(operator, f"/access/requests/{request_id}/approve", {"reason": "ok"})
    assert approved.status_code == 303
    html = text(member.get(f"/sites/{site_id}/access"))
    assert nobody.email in html and "technician" in html and "Grant access" not in html


# --- members and roles ------------------------------------------------------------------


def test_an_admin_changes_a_members_role(
    admin: FlaskClient, viewer: FlaskClient, client: FlaskClient, db: Database, tenant: Any
) -> None:
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    page = text(admin.get("/members"))
    assert f'action="/members/{viewer_id}/role"' in page and "Create a role" in page
    assert_forms_carry_csrf(page)
    assert_no_inline_code(page)
    saved = post_form(admin, f"/members/{viewer_id}/role", {"role": "technician"})
    assert (
        saved.status_code == 303
        and saved.headers["Location"] == "/members?notice=member-role-saved"
    )
    with db.unit_of_work(write=False) as session:
        role = session.scalar(select(Membership.role).where(Membership.user_id == viewer_id))
    assert role == "technician"
    assert len(events(db, "identity.membership.updated")) == 1
    unknown = post_form(admin, f"/members/{viewer_id}/role", {"role": "wizard"})
    assert unknown.status_code == 422 and "Unknown role" in text(unknown)


def test_a_viewer_sees_members_without_forms_and_cannot_change_them(
    viewer: FlaskClient, client: FlaskClient, tenant: Any
) -> None:
    operator_id = user_id_of(client, tenant.headers("operator"))
    page = text(viewer.get("/members"))
    assert OPERATOR in page and "/role" not in page and "Create a role" not in page
    refused = post_form(viewer, f"/members/{operator_id}/role", {"role": "admin"})
    assert refused.status_code == 403


def test_the_last_admin_cannot_lose_the_role(
    admin: FlaskClient, client: FlaskClient, tenant: Any
) -> None:
    admin_id = user_id_of(client, tenant.headers("admin"))
    refused = post_form(admin, f"/members/{admin_id}/role", {"role": "viewer"})
    assert refused.status_code == 409 and "last admin" in text(refused)


def test_removing_a_member(
    admin: FlaskClient, client: FlaskClient, db: Database, tenant: Any
) -> None:
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    removed = post_form(admin, f"/members/{viewer_id}/remove", {})
    assert removed.status_code == 303
    assert VIEWER not in text(admin.get(removed.headers["Location"]))
    assert len(events(db, "identity.membership.deleted")) == 1


def test_custom_roles_create_edit_delete(admin: FlaskClient, db: Database, tenant: Any) -> None:
    made = post_form(
        admin,
        "/members/roles",
        {"name": "reader", "description": "Reads", "permissions": ["site.read", "asset.read"]},
    )
    assert made.status_code == 303
    page = text(admin.get("/members"))
    assert 'action="/members/roles/reader"' in page and "Reads" in page
    revision = re.search(
        r'action="/members/roles/reader".*?name="revision" value="(\d+)"', page, re.S
    )
    assert revision is not None
    bad = post_form(admin, "/members/roles", {"name": "Bad Name", "permissions": ["site.read"]})
    assert bad.status_code == 422 and 'id="role-new-name-error"' in text(bad)

    edited = post_form(
        admin,
        "/members/roles/reader",
        {"revision": revision.group(1), "description": "Reads sites", "permissions": ["site.read"]},
    )
    assert edited.status_code == 303
    stale = post_form(
        admin, "/members/roles/reader", {"revision": revision.group(1), "permissions": []}
    )
    assert stale.status_code == 409 and "has changed" in text(stale)
    deleted = post_form(admin, "/members/roles/reader/delete", {"revision": "2"})
    assert deleted.status_code == 303
    for action in ("identity.role.created", "identity.role.updated", "identity.role.deleted"):
        assert len(events(db, action)) == 1, action


def test_the_longest_grant_setting(admin: FlaskClient, db: Database, tenant: Any) -> None:
    saved = post_form(admin, "/members/max-grant-hours", {"max_grant_hours": "24"})
    assert saved.status_code == 303
    with db.unit_of_work(write=False) as session:
        assert session.get(Organization, tenant.org_id).max_grant_hours == 24  # type: ignore[union-attr]
    assert 'value="24"' in text(admin.get("/members"))
    refused = post_form(admin, "/members/max-grant-hours", {"max_grant_hours": "0"})
    assert refused.status_code == 422 and 'id="max-grant-max_grant_hours-error"' in text(refused)
    assert len(events(db, "identity.organization.updated")) == 1


def test_posts_without_the_csrf_token_are_refused(
    operator: FlaskClient, client: FlaskClient, db: Database, tenant: Any, fleet: SmallFleet
) -> None:
    viewer_id = user_id_of(client, tenant.headers("viewer"))
    csrf(operator)
    path = f"/sites/{fleet.site['id']}/access/grants"
    refused = operator.post(path, data=grant_form(viewer_id))
    assert refused.status_code in (400, 403)
    assert grant_count(db) == 0
