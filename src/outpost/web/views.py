"""The list of page blueprints, one per domain that has pages, and what every page shares."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from outpost.audit import views as audit_views
from outpost.connectivity import views as connectivity_views
from outpost.files import views as files_views
from outpost.identity import access_views, invitation_views, mfa_views
from outpost.identity import views as identity_views
from outpost.identity.authz import permissions_of
from outpost.inventory import views as inventory_views
from outpost.telemetry import views as telemetry_views

#: Messages a page may show after a redirect, picked by ``?notice=<key>``.
NOTICES = {
    "site-saved": "The site was saved.",
    "asset-saved": "The asset was saved.",
    "asset-unchanged": "Nothing changed: the asset already had these values.",
    "asset-deleted": "The asset was deleted.",
    "token-revoked": "The token was revoked.",
    "credential-revoked": "The device credential was revoked: the device can no longer send.",
    "mfa-disabled": "Two-step login is off; your recovery codes no longer work.",
    "mfa-policy-saved": "The organization's MFA requirement was saved.",
    "password-changed": "Password changed: your other sessions and API tokens are ended.",
    "changeset-applied": "The change set was applied.",
    "file-uploaded": "The file was uploaded.",
    "file-saved": "The file was saved.",
    "file-deleted": "The file was moved to the trash.",
    "file-restored": "The file was restored.",
    "share-created": "The file was shared.",
    "share-revoked": "The share was revoked.",
    "link-revoked": "The link was revoked.",
    "grant-created": "Access was granted.",
    "grant-revoked": "The grant was revoked.",
    "grant-ended": "Your grant has ended.",
    "request-created": "Your access request was sent.",
    "request-cancelled": "The access request was cancelled.",
    "request-approved": "The request was approved: the grant is in force.",
    "request-denied": "The request was denied.",
    "member-role-saved": "The member's role was saved.",
    "member-removed": "The member was removed: their sessions, tokens and grants here ended.",
    "role-created": "The role was created.",
    "role-saved": "The role was saved.",
    "role-deleted": "The role was deleted.",
    "max-grant-saved": "The longest grant was saved.",
    "no-access": "You have no access to any site yet: ask for some below.",
}

layout = Blueprint("layout", __name__)


@layout.app_context_processor
def _shared() -> dict[str, Any]:
    """``notice`` and ``may(permission)``, which hides buttons for what the user holds
    nowhere.

    Hiding is a courtesy only: the service still authorizes every write where it happens.
    """

    def may(permission: str) -> bool:
        who = getattr(g, "principal", None)
        return who is not None and permission in permissions_of(who)

    return {"notice": NOTICES.get(request.args.get("notice", "")), "may": may}


def blueprints() -> list[Blueprint]:
    return [
        layout,
        inventory_views.bp,
        audit_views.bp,
        identity_views.bp,
        mfa_views.bp,
        access_views.bp,
        invitation_views.bp,
        files_views.bp,
        files_views.public,
        telemetry_views.bp,
        connectivity_views.bp,
    ]
