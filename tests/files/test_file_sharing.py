"""Shares with members and roles, and expiring links for people outside the platform."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from outpost.clock import isoformat, utcnow
from outpost.db import Database
from outpost.files.models import FileLink, FileShare
from support.files import PDF, created, put_file

CSRF = "test-csrf-token"


@pytest.fixture
def pdf_file(client: FlaskClient, tenant: Any, site: dict[str, Any]) -> dict[str, Any]:
    return created(
        put_file(client, tenant.headers(), PDF, name="plan.pdf", folder="/a/b", site_id=site["id"])
    )


def viewer_id(client: FlaskClient, tenant: Any) -> str:
    """The viewer's user id, read from the audit trail of its creation."""
    events = client.get(
        "/api/v1/audit?action=identity.user.created", headers=tenant.headers()
    ).get_json()["items"]
    return next(e["object_id"] for e in events if e["after"]["email"].startswith("viewer@"))


def in_days(days: float) -> str:
    return isoformat(utcnow() + timedelta(days=days))


# --- shares -----------------------------------------------------------------------------


def test_a_write_share_lets_a_viewer_add_a_version_until_revoked(
    client: FlaskClient, tenant: Any, site: dict[str, Any], pdf_file: dict[str, Any]
) -> None:
    viewer = tenant.headers("viewer")
    again = {"name": "plan.pdf", "folder": "/a/b", "site_id": site["id"]}
    assert put_file(client, viewer, PDF + b"v2", **again).status_code == 403

    share = client.post(
        f"/api/v1/files/{pdf_file['id']}/shares",
        json={
            "grantee_type": "user",
            "grantee_id": viewer_id(client, tenant),
            "access": "write",
            "expires_at": in_days(1),
        },
        headers=tenant.headers("operator"),
    )
    assert share.status_code == 201, share.get_json()
    assert put_file(client, viewer, PDF + b"v2", **again).status_code == 200
    # the share reaches this file only: a new file in the folder is still refused
    assert put_file(client, viewer, PDF, name="other.pdf", folder="/a/b").status_code == 403

    revoked = client.delete(f"/api/v1/shares/{share.get_json()['id']}", headers=tenant.headers())
    assert revoked.status_code == 200
    assert put_file(client, viewer, PDF + b"v3", **again).status_code == 403


def test_a_folder_share_for_a_role_covers_subfolders_and_expires(
    client: FlaskClient, tenant: Any, site: dict[str, Any], pdf_file: dict[str, Any], db: Database
) -> None:
    viewer = tenant.headers("viewer")
    share = client.post(
        "/api/v1/shares",
        json={
            "site_id": site["id"],
            "folder": "/a",
            "grantee_type": "role",
            "grantee_id": "viewer",
            "access": "write",
            "expires_at": in_days(2),
        },
        headers=tenant.headers(),
    )
    assert share.status_code == 201, share.get_json()
    assert share.get_json()["folder"] == "/a"
    placed = {"folder": "/a/b/c", "site_id": site["id"]}
    assert put_file(client, viewer, PDF, name="new.pdf", **placed).status_code == 201
    outside = put_file(client, viewer, PDF, name="new.pdf", folder="/ab", site_id=site["id"])
    assert outside.status_code == 403
    shares = client.get(f"/api/v1/files/{pdf_file['id']}/shares", headers=viewer).get_json()
    assert [s["id"] for s in shares["items"]] == [share.get_json()["id"]]

    with db.unit_of_work() as session:  # the share ran out a second ago
        session.execute(update(FileShare).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert put_file(client, viewer, PDF, name="later.pdf", **placed).status_code == 403


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"grantee_id": "usr_nobody"}, "share.grantee_unknown"),
        ({"grantee_type": "role", "grantee_id": "superuser"}, "share.role_unknown"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "share.expiry_out_of_range"),
        ({"expires_at": "2099-01-01T00:00:00Z"}, "share.expiry_out_of_range"),
    ],
)
def test_bad_shares_are_400(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any], change: dict[str, str], code: str
) -> None:
    body = {
        "grantee_type": "user",
        "grantee_id": viewer_id(client, tenant),
        "expires_at": in_days(1),
    }
    response = client.post(
        f"/api/v1/files/{pdf_file['id']}/shares", json={**body, **change}, headers=tenant.headers()
    )
    assert response.status_code == 400
    assert [e["code"] for e in response.get_json()["errors"]] == [code]


def test_viewers_cannot_share(client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]) -> None:
    response = client.post(
        f"/api/v1/files/{pdf_file['id']}/shares",
        json={"grantee_type": "role", "grantee_id": "viewer", "expires_at": in_days(1)},
        headers=tenant.headers("viewer"),
    )
    assert response.status_code == 403


# --- links ------------------------------------------------------------------------------


def make_link(client: FlaskClient, tenant: Any, file_id: str, **options: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/links", json={"file_id": file_id, **options}, headers=tenant.headers("operator")
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def token_of(link: dict[str, Any]) -> str:
    return str(link["url"]).rsplit("/", 1)[1]


def test_a_link_downloads_without_an_account(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]
) -> None:
    link = make_link(client, tenant, pdf_file["id"])
    assert link["url"].startswith("http://localhost/l/opl_")
    listed = client.get(f"/api/v1/links?file_id={pdf_file['id']}", headers=tenant.headers())
    assert "url" not in listed.get_json()["items"][0]  # the secret is shown once

    anonymous = client.application.test_client()
    page = anonymous.get(f"/l/{token_of(link)}")
    assert page.status_code == 200
    assert "plan.pdf" in page.get_data(as_text=True)
    redirect = anonymous.get(f"/l/{token_of(link)}/download")
    assert redirect.status_code == 303
    assert redirect.headers["Location"].startswith("/dl/")
    download = anonymous.get(redirect.headers["Location"])
    assert download.status_code == 200
    assert download.data == PDF
    events = client.get("/api/v1/audit?action=files.link.used", headers=tenant.headers())
    (used,) = events.get_json()["items"]
    assert used["actor_type"] == "link"
    assert used["after"]["link_id"] == link["id"]


def test_a_password_link_needs_its_password_and_locks_after_failures(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]
) -> None:
    link = make_link(client, tenant, pdf_file["id"], password="open sesame 42")
    token = token_of(link)
    anonymous = client.application.test_client()
    anonymous.set_cookie("outpost_csrf", CSRF)
    assert anonymous.get(f"/l/{token}/download").status_code == 403

    def attempt(password: str) -> Any:
        return anonymous.post(f"/l/{token}", data={"csrf_token": CSRF, "password": password})

    assert attempt("open sesame 42").status_code == 303
    for _ in range(5):
        assert attempt("wrong").status_code == 403
    locked = attempt("open sesame 42")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0


def test_a_link_stops_after_max_downloads(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]
) -> None:
    token = token_of(make_link(client, tenant, pdf_file["id"], max_downloads=2))
    anonymous = client.application.test_client()
    assert anonymous.get(f"/l/{token}/download").status_code == 303
    assert anonymous.get(f"/l/{token}/download").status_code == 303
    assert anonymous.get(f"/l/{token}/download").status_code == 404
    assert anonymous.get(f"/l/{token}").status_code == 404


def test_expired_revoked_and_unknown_links_are_404(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any], db: Database
) -> None:
    anonymous = client.application.test_client()
    expiring = make_link(client, tenant, pdf_file["id"])
    with db.unit_of_work() as session:
        session.execute(
            update(FileLink)
            .where(FileLink.id == expiring["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert anonymous.get(f"/l/{token_of(expiring)}").status_code == 404
    assert anonymous.get(f"/l/{token_of(expiring)}/download").status_code == 404

    revoked = make_link(client, tenant, pdf_file["id"])
    assert (
        client.delete(f"/api/v1/links/{revoked['id']}", headers=tenant.headers()).status_code == 200
    )
    assert anonymous.get(f"/l/{token_of(revoked)}/download").status_code == 404
    assert anonymous.get("/l/opl_00000000_not-a-real-token").status_code == 404


def test_a_deleted_files_links_stop_working(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]
) -> None:
    token = token_of(make_link(client, tenant, pdf_file["id"]))
    client.delete(
        f"/api/v1/files/{pdf_file['id']}", headers={**tenant.headers(), "If-Match": '"1"'}
    )
    assert client.application.test_client().get(f"/l/{token}/download").status_code == 404


def test_links_are_capped_and_tenant_bound(
    client: FlaskClient, tenant: Any, other_tenant: Any, pdf_file: dict[str, Any]
) -> None:
    too_long = client.post(
        "/api/v1/links",
        json={"file_id": pdf_file["id"], "expires_in_hours": 24 * 30},
        headers=tenant.headers(),
    )
    assert too_long.status_code == 400
    assert too_long.get_json()["errors"][0]["code"] == "link.expiry_too_long"
    link = make_link(client, tenant, pdf_file["id"])
    theirs = client.delete(f"/api/v1/links/{link['id']}", headers=other_tenant.headers())
    assert theirs.status_code == 404
    listed = client.get(f"/api/v1/links?file_id={pdf_file['id']}", headers=other_tenant.headers())
    assert listed.status_code == 404


def test_a_tampered_signed_url_is_404(client: FlaskClient) -> None:
    assert client.get("/dl/not-a-signature").status_code == 404
