"""File pages: the browser on site and asset pages, uploads, a file's page (preview,
versions, edit, delete, restore), the share dialog with shares and links, and the trash."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from outpost.clock import utcnow
from support.files import PDF, PNG, created, put_file
from support.web import SmallFleet, post_form

TEXT = b"line one\nline two\n"


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def api_file(
    client: FlaskClient, tenant: Any, content: bytes, name: str, **place: str
) -> dict[str, Any]:
    return created(put_file(client, tenant.headers(), content, name=name, **place))


def revision_of(html: str) -> str:
    match = re.search(r'name="revision" value="(\d+)"', html)
    assert match is not None
    return match.group(1)


def upload_page(
    user: FlaskClient, content: bytes, filename: str, *, as_json: bool = False, **fields: str
) -> Any:
    """Post the browser's upload form, as a plain form or as the upload script does."""
    headers = {"Accept": "application/json"} if as_json else {}
    return post_form(
        user,
        "/files/upload",
        {"file": (io.BytesIO(content), filename), **fields},
        content_type="multipart/form-data",
        headers=headers,
    )


def actions(client: FlaskClient, tenant: Any, file_id: str) -> list[str]:
    query = {"object_id": file_id}
    events = client.get("/api/v1/audit", query_string=query, headers=tenant.headers())
    return [e["action"] for e in events.get_json()["items"]]


# --- the browser ------------------------------------------------------------------------


def test_site_page_shows_the_browser_with_a_file_uploaded_through_the_api(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    file = api_file(client, tenant, PDF, "report.pdf", site_id=site_id)
    html = text(admin.get(f"/sites/{site_id}"))
    assert 'id="files"' in html and '<h2 id="files-title">Files</h2>' in html
    assert f'href="/files/{file["id"]}">report.pdf</a>' in html
    assert "PDF" in html and f"{len(PDF)} Bytes" in html
    assert f'href="/files/trash?site_id={site_id}"' in html
    assert 'action="/files/upload"' in html and 'enctype="multipart/form-data"' in html
    assert f'name="site_id" value="{site_id}"' in html
    assert '<script src="/static/files.js" defer></script>' in html


def test_asset_page_shows_the_files_of_the_asset_only(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    asset_id = fleet.gateway["id"]
    api_file(client, tenant, PDF, "gateway-manual.pdf", asset_id=asset_id)
    api_file(client, tenant, PDF, "site-plan.pdf", site_id=fleet.site["id"])
    html = text(admin.get(f"/assets/{asset_id}"))
    assert "gateway-manual.pdf" in html and "site-plan.pdf" not in html
    assert f'name="asset_id" value="{asset_id}"' in html
    assert "site-plan.pdf" in text(admin.get(f"/sites/{fleet.site['id']}"))


def test_folder_navigation_shows_subfolders_and_breadcrumb(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    api_file(client, tenant, PDF, "top.pdf", site_id=site_id)
    api_file(client, tenant, PDF, "x.pdf", folder="/a", site_id=site_id)
    api_file(client, tenant, PDF, "c.pdf", folder="/a/b/deep", site_id=site_id)

    root = text(admin.get(f"/sites/{site_id}"))
    assert "top.pdf" in root and "x.pdf" not in root
    assert 'href="?folder=%2Fa#files"' in root and ">a/</a>" in root

    inside = text(admin.get(f"/sites/{site_id}?folder=/a"))
    assert "x.pdf" in inside and "top.pdf" not in inside and "c.pdf" not in inside
    assert 'href="?folder=%2Fa%2Fb#files"' in inside and ">b/</a>" in inside
    assert 'href="?folder=%2F#files">Files</a>' in inside
    assert '<span aria-current="location">a</span>' in inside
    assert 'name="folder" type="text" value="/a"' in inside  # uploads go here
    assert f'name="next" value="/sites/{site_id}?folder=%2Fa"' in inside

    deep = text(admin.get(f"/sites/{site_id}?folder=a/b/deep/"))  # normalized
    assert "c.pdf" in deep and '<span aria-current="location">deep</span>' in deep
    empty = text(admin.get(f"/sites/{site_id}?folder=/nothing"))
    assert "No files in this folder yet." in empty
    assert admin.get(f"/sites/{site_id}?folder=/a/..").status_code in (400, 422)


def test_browser_paginates(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet, monkeypatch: Any
) -> None:
    from outpost.files import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    site_id = fleet.site["id"]
    for name in ("a.txt", "b.txt", "c.txt"):
        api_file(client, tenant, TEXT, name, site_id=site_id)
    first = text(admin.get(f"/sites/{site_id}"))
    assert "a.txt" in first and "b.txt" in first and "c.txt" not in first
    match = re.search(r'href="\?([^"]*cursor=[^"#]+)#files" rel="next"', first)
    assert match is not None
    second = text(admin.get(f"/sites/{site_id}?{match.group(1).replace('&amp;', '&')}"))
    assert "c.txt" in second and "a.txt" not in second and "« First files" in second


# --- uploads ----------------------------------------------------------------------------


def test_plain_form_upload_redirects_back_and_lists_the_file(
    operator: FlaskClient, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    response = upload_page(
        operator,
        PDF,
        "wiring.pdf",
        site_id=site_id,
        folder="/manuals",
        description="Cabinet wiring",
        tags="wiring, cabinet",
        next=f"/sites/{site_id}?folder=%2Fmanuals",
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/sites/{site_id}"
    assert parse_qs(location.query) == {"folder": ["/manuals"], "notice": ["file-uploaded"]}

    html = text(operator.get(response.headers["Location"]))
    assert "The file was uploaded." in html
    assert "wiring.pdf" in html and "Cabinet wiring" in html


def test_upload_refuses_open_redirects_and_needs_a_file(
    operator: FlaskClient, fleet: SmallFleet
) -> None:
    response = upload_page(
        operator, PDF, "a.pdf", site_id=fleet.site["id"], next="https://evil.test/x"
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/?notice=file-uploaded"
    missing = post_form(
        operator,
        "/files/upload",
        {"site_id": fleet.site["id"], "file": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400
    assert "Choose a file to upload." in text(missing)


def test_script_upload_answers_json_and_a_second_upload_is_a_version(
    operator: FlaskClient, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    first = upload_page(operator, PNG, "panel.png", site_id=site_id, as_json=True)
    assert first.status_code == 201
    body = first.get_json()
    assert body["url"] == f"/files/{body['id']}" and body["version"] == 1
    again = upload_page(operator, PNG + b"2", "panel.png", site_id=site_id, as_json=True)
    assert again.status_code == 200
    assert again.get_json()["id"] == body["id"] and again.get_json()["version"] == 2


def test_upload_errors_render_an_error_page(operator: FlaskClient, fleet: SmallFleet) -> None:
    refused = upload_page(
        operator, b"\x7fELF\x02\x01" + b"\x00" * 64, "tool.bin", site_id=fleet.site["id"]
    )
    assert refused.status_code == 415
    assert "not accepted here" in text(refused)
    assert "error-detail" in text(refused)  # what the upload script shows


def test_viewer_sees_no_upload_form_and_cannot_upload(
    viewer: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    file = api_file(client, tenant, PDF, "report.pdf", site_id=site_id)
    html = text(viewer.get(f"/sites/{site_id}"))
    assert "report.pdf" in html
    assert 'action="/files/upload"' not in html
    assert viewer.post("/files/upload").status_code == 400  # no CSRF token
    refused = upload_page(viewer, PDF, "mine.pdf", site_id=site_id)
    assert refused.status_code == 403
    page = text(viewer.get(f"/files/{file['id']}"))
    assert "Edit file" not in page and "Delete file" not in page
    assert 'id="share-dialog"' not in page and "Share…" not in page
    assert "Download" in page


def test_pages_need_a_login(client: FlaskClient, tenant: Any, fleet: SmallFleet) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    response = client.get(f"/files/{file['id']}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get(f"/files/{file['id']}/download").status_code == 302


# --- a file's page ----------------------------------------------------------------------


def test_detail_shows_metadata_versions_and_an_image_preview(
    admin: FlaskClient, operator: FlaskClient, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    first = upload_page(
        operator, PNG, "panel.png", as_json=True, site_id=site_id, folder="/photos", tags="roof"
    )
    file_id = first.get_json()["id"]
    again = upload_page(operator, PNG + b"v2", "panel.png", site_id=site_id, folder="/photos")
    assert again.status_code == 303

    html = text(admin.get(f"/files/{file_id}"))
    assert "<h1>panel.png" in html
    assert f'href="/sites/{site_id}">Plant P1</a>' in html
    assert f'href="/sites/{site_id}?folder=%2Fphotos#files"' in html
    assert "image/png" in html and '<span class="tag">roof</span>' in html
    assert 'Versions <span class="muted">(2)</span>' in html
    assert f'href="/files/{file_id}/download?version=1"' in html
    assert f'href="/files/{file_id}/download?version=2"' in html
    assert "operator@acme-solar.test" in html  # uploaded by
    assert f'<img class="preview-image" src="/files/{file_id}/download?inline=1"' in html
    assert "<object" not in html


def test_detail_shows_a_pdf_preview_and_downloads_return_the_bytes(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "manual.pdf", site_id=fleet.site["id"])
    put_file(client, tenant.headers(), PDF + b"%v2", name="manual.pdf", site_id=fleet.site["id"])
    html = text(admin.get(f"/files/{file['id']}"))
    inline = f"/files/{file['id']}/download?inline=1"
    assert f'<object class="preview-pdf" data="{inline}" type="application/pdf">' in html
    assert "<img" not in html

    latest = admin.get(f"/files/{file['id']}/download")
    assert latest.status_code == 200 and latest.data == PDF + b"%v2"
    assert latest.headers["Content-Disposition"].startswith("attachment;")
    first = admin.get(f"/files/{file['id']}/download?version=1")
    assert first.data == PDF
    shown = admin.get(inline)
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["Content-Type"] == "application/pdf"
    assert admin.get(f"/files/{file['id']}/download?version=9").status_code == 404
    assert admin.get(f"/files/{file['id']}/download?version=x").status_code == 400


def test_other_types_get_no_preview(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, TEXT, "notes.txt", site_id=fleet.site["id"])
    html = text(admin.get(f"/files/{file['id']}"))
    assert "No preview for text/plain files." in html


def test_edit_form_renames_and_reports_problems(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    file = api_file(client, tenant, PDF, "draft.pdf", site_id=site_id)
    api_file(client, tenant, PDF, "taken.pdf", site_id=site_id)
    path = f"/files/{file['id']}"
    revision = revision_of(text(admin.get(path)))
    form = {"name": "final.pdf", "folder": "/docs", "description": "Signed", "tags": "a, b"}
    saved = post_form(admin, path, {**form, "revision": revision})
    assert saved.status_code == 303 and "notice=file-saved" in saved.headers["Location"]
    html = text(admin.get(saved.headers["Location"]))
    assert "The file was saved." in html and "<h1>final.pdf" in html and "Signed" in html

    stale = post_form(admin, path, {**form, "name": "other.pdf", "revision": revision})
    assert stale.status_code == 409
    assert "Someone else changed this file" in text(stale)

    current = revision_of(html)
    clash = post_form(
        admin, path, {**form, "folder": "/", "name": "taken.pdf", "revision": current}
    )
    assert clash.status_code == 409
    page = text(clash)
    assert "file.name_taken" in page and "already holds a file named" in page
    assert 'value="taken.pdf"' in page  # the form keeps what was typed

    bad = post_form(admin, path, {**form, "name": "a/b", "revision": current})
    assert bad.status_code == 422 and 'id="file-name-error"' in text(bad)
    empty = post_form(admin, path, {**form, "name": "", "revision": current})
    assert empty.status_code == 400 and 'id="file-name-error"' in text(empty)


def test_delete_then_restore_through_the_forms(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    site_id = fleet.site["id"]
    file = api_file(client, tenant, PDF, "old.pdf", site_id=site_id)
    path = f"/files/{file['id']}"

    stale = post_form(admin, f"{path}/delete", {"revision": "99"})
    assert stale.status_code == 409 and "Someone else changed this file" in text(stale)

    deleted = post_form(admin, f"{path}/delete", {"revision": revision_of(text(admin.get(path)))})
    assert deleted.status_code == 303
    html = text(admin.get(deleted.headers["Location"]))
    assert "The file was moved to the trash." in html and "This file is in the trash" in html
    assert "Restore old.pdf" in html and "Delete file" not in html
    assert "<object" not in html and "/download" not in html
    assert "old.pdf" not in text(admin.get(f"/sites/{site_id}"))
    assert admin.get(f"{path}/download").status_code == 404

    trash = text(admin.get(f"/files/trash?site_id={site_id}"))
    assert 'Trash <span class="muted">of Plant P1</span>' in trash
    assert f'href="{path}">old.pdf</a>' in trash
    restored = post_form(
        admin,
        f"{path}/restore",
        {"revision": revision_of(trash), "next": f"/files/trash?site_id={site_id}"},
    )
    assert restored.status_code == 303
    assert restored.headers["Location"] == f"/files/trash?site_id={site_id}&notice=file-restored"
    trash = text(admin.get(restored.headers["Location"]))
    assert "The file was restored." in trash and "The trash is empty." in trash
    assert "old.pdf" in text(admin.get(f"/sites/{site_id}"))

    again = post_form(admin, f"{path}/restore", {"revision": revision_of(text(admin.get(path)))})
    assert again.status_code == 409 and "is not deleted" in text(again)

    assert actions(client, tenant, file["id"]) == [
        "files.file.restored",
        "files.file.deleted",
        "files.file.uploaded",
    ]


def test_trash_of_the_organization_lists_every_owner(
    admin: FlaskClient, viewer: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "gone.pdf", asset_id=fleet.gateway["id"])
    client.delete(f"/api/v1/files/{file['id']}", headers={**tenant.headers(), "If-Match": '"1"'})
    html = text(admin.get("/files/trash"))
    assert "gone.pdf" in html and "asset" in html and "Restore" in html
    shown = text(viewer.get("/files/trash"))
    assert "gone.pdf" in shown and ">Restore</button>" not in shown


# --- sharing ----------------------------------------------------------------------------


def test_share_dialog_renders_open_with_share_1(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    path = f"/files/{file['id']}"
    closed = text(admin.get(path))
    assert '<dialog id="share-dialog" class="dialog" aria-labelledby="share-title">' in closed
    assert f'href="{path}?share=1" data-open-dialog="share-dialog"' in closed
    opened = text(admin.get(f"{path}?share=1"))
    assert 'aria-labelledby="share-title" open>' in opened
    assert 'name="grantee_type"' in opened and 'name="expires_in_hours"' in opened


def test_share_with_a_role_and_revoke_it(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    path = f"/files/{file['id']}"
    until = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = {"grantee_type": "role", "grantee_id": "viewer", "access": "write", "expires_at": until}
    shared = post_form(admin, f"{path}/shares", form)
    assert shared.status_code == 303
    assert shared.headers["Location"] == f"{path}?share=1&notice=share-created"
    html = text(admin.get(shared.headers["Location"]))
    assert "The file was shared." in html
    assert "role <code>viewer</code>" in html and "<td>write</td>" in html
    assert until.replace("T", " ") in html  # read as UTC
    share_id = re.search(r'action="/files/shares/([^/"]+)/revoke"', html).group(1)  # type: ignore[union-attr]

    revoked = post_form(admin, f"/files/shares/{share_id}/revoke", {"next": f"{path}?share=1"})
    assert revoked.status_code == 303
    html = text(admin.get(revoked.headers["Location"]))
    assert "The share was revoked." in html and ">revoked</span>" in html
    assert actions(client, tenant, share_id) == ["files.share.revoked", "files.share.created"]


def test_refused_share_reopens_the_dialog_with_the_problem(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    path = f"/files/{file['id']}"
    past = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = post_form(
        admin,
        f"{path}/shares",
        {"grantee_type": "role", "grantee_id": "chief", "access": "read", "expires_at": past},
    )
    assert refused.status_code == 400
    html = text(refused)
    assert 'aria-labelledby="share-title" open>' in html
    assert 'id="share-grantee_id-error"' in html and "Unknown role" in html
    assert 'id="share-expires_at-error"' in html
    assert 'value="chief"' in html
    member = post_form(
        admin,
        f"{path}/shares",
        {"grantee_type": "user", "grantee_id": "usr_nobody", "expires_at": past[:10] + "T23:59"},
    )
    assert member.status_code == 400 and "No such member here." in text(member)


def test_create_a_link_shows_its_url_once(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    path = f"/files/{file['id']}"
    response = post_form(
        admin, f"{path}/links", {"expires_in_hours": "2", "password": "", "max_downloads": "3"}
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = text(response)
    url = re.search(r'id="issued-link" class="secret" type="text" readonly value="([^"]+)"', html)
    assert url is not None and "/l/opl_" in url.group(1)
    assert "shown only this once" in html
    token_path = urlsplit(url.group(1)).path

    reloaded = text(admin.get(f"{path}?share=1"))
    assert token_path not in reloaded and "issued-link" not in reloaded
    prefix = "_".join(token_path.split("/")[-1].split("_")[:2])  # opl_<8 hex>
    assert f"<code>{prefix}…</code>" in reloaded and "0 / 3" in reloaded

    outsider = client.get(token_path)  # the link works for someone not logged in
    assert outsider.status_code == 200 and "report.pdf" in text(outsider)

    link_id = re.search(r'action="/files/links/([^/"]+)/revoke"', reloaded).group(1)  # type: ignore[union-attr]
    revoked = post_form(admin, f"/files/links/{link_id}/revoke", {})
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == f"{path}?share=1&notice=link-revoked"
    assert "The link was revoked." in text(admin.get(revoked.headers["Location"]))
    assert client.get(token_path).status_code == 404
    assert actions(client, tenant, link_id) == ["files.link.revoked", "files.link.created"]


def test_refused_link_reopens_the_dialog(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    file = api_file(client, tenant, PDF, "report.pdf", site_id=fleet.site["id"])
    path = f"/files/{file['id']}"
    refused = post_form(admin, f"{path}/links", {"expires_in_hours": "100000", "password": "short"})
    assert refused.status_code == 400
    html = text(refused)
    assert 'aria-labelledby="share-title" open>' in html
    assert 'id="link-password-error"' in html
    assert 'value="short"' not in html  # a password is never echoed back
    too_long = post_form(admin, f"{path}/links", {"expires_in_hours": "100000"})
    assert too_long.status_code == 400
    assert 'id="link-expires_in_hours-error"' in text(too_long)
    assert "at most 168 hours" in text(too_long)


# --- tenancy and audit ------------------------------------------------------------------


def test_another_tenants_file_is_not_found(
    admin: FlaskClient, client: FlaskClient, other_tenant: Any, tenant: Any
) -> None:
    theirs = created(put_file(client, other_tenant.headers(), PDF, name="secret.pdf"))
    path = f"/files/{theirs['id']}"
    assert admin.get(path).status_code == 404
    assert admin.get(f"{path}/download").status_code == 404
    assert admin.get(f"{path}?share=1").status_code == 404
    assert post_form(admin, f"{path}/delete", {"revision": "1"}).status_code == 404
    assert post_form(admin, f"{path}/links", {"expires_in_hours": "1"}).status_code == 404
    site = client.post(
        "/api/v1/sites", json={"name": "Theirs", "code": "T1"}, headers=other_tenant.headers()
    ).get_json()
    assert admin.get(f"/files/trash?site_id={site['id']}").status_code == 404


def test_the_audit_log_records_what_the_pages_did(
    admin: FlaskClient, client: FlaskClient, tenant: Any, fleet: SmallFleet
) -> None:
    response = upload_page(admin, PDF, "audited.pdf", site_id=fleet.site["id"], as_json=True)
    file_id = response.get_json()["id"]
    path = f"/files/{file_id}"
    upload_page(admin, PDF + b"2", "audited.pdf", site_id=fleet.site["id"])
    admin.get(f"{path}/download")
    post_form(
        admin,
        path,
        {
            "name": "audited-v2.pdf",
            "folder": "/",
            "description": "",
            "tags": "",
            "revision": revision_of(text(admin.get(path))),
        },
    )
    post_form(admin, f"{path}/delete", {"revision": revision_of(text(admin.get(path)))})
    assert actions(client, tenant, file_id) == [
        "files.file.deleted",
        "files.file.updated",
        "files.file.downloaded",
        "files.file.version_added",
        "files.file.uploaded",
    ]
    events = client.get(
        "/api/v1/audit", query_string={"object_id": file_id}, headers=tenant.headers()
    ).get_json()["items"]
    assert {e["actor_label"] for e in events} == {"admin@acme-solar.test"}
