"""The files API: uploads, versions, downloads with ranges, metadata, trash, limits."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fleet import post
from outpost.db import Database
from outpost.files.models import File, FileVersion
from outpost.files.streams import ContentCorrupted
from support.files import PDF, PNG, created, put_file, upload_form

ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 100


def blob_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def counts(db: Database) -> tuple[int, int]:
    with db.unit_of_work(write=False) as session:
        files = session.scalar(select(func.count()).select_from(File))
        versions = session.scalar(select(func.count()).select_from(FileVersion))
    return files or 0, versions or 0


def actions(client: FlaskClient, tenant: Any) -> list[str]:
    events = client.get("/api/v1/audit", headers=tenant.headers()).get_json()["items"]
    return [e["action"] for e in events]


# --- upload and versions ----------------------------------------------------------------


def test_put_creates_a_file_and_the_same_name_adds_a_version(
    client: FlaskClient, tenant: Any, site: dict[str, Any]
) -> None:
    headers = tenant.headers("operator")
    first = put_file(client, headers, PDF, name="wiring.pdf", folder="diagrams", site_id=site["id"])
    assert first.status_code == 201
    body = first.get_json()
    assert body["folder"] == "/diagrams"
    assert body["content_type"] == "application/pdf"
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert first.headers["ETag"] == '"1"'
    assert first.headers["Location"].endswith(body["id"])

    second = put_file(
        client, headers, PDF + b"rev2", name="wiring.pdf", folder="/diagrams/", site_id=site["id"]
    )
    assert second.status_code == 200
    assert second.get_json()["id"] == body["id"]
    assert second.get_json()["version_count"] == 2

    versions = client.get(f"/api/v1/files/{body['id']}/versions", headers=headers).get_json()
    assert [v["number"] for v in versions["items"]] == [2, 1]
    old = client.get(f"/api/v1/files/{body['id']}/content?version=1", headers=headers)
    assert old.data == PDF
    new = client.get(f"/api/v1/files/{body['id']}/content", headers=headers)
    assert new.data == PDF + b"rev2"
    assert actions(client, tenant)[:4] == [
        "files.file.downloaded",
        "files.file.downloaded",
        "files.file.version_added",
        "files.file.uploaded",
    ]


def test_multipart_upload_takes_the_file_name_and_fields(
    client: FlaskClient, tenant: Any, site: dict[str, Any]
) -> None:
    response = upload_form(
        client,
        tenant.headers(),
        PNG,
        "photo.png",
        site_id=site["id"],
        folder="/photos",
        description="Roof, east side",
        tags="roof, commissioning",
    )
    body = created(response)
    assert response.status_code == 201
    assert (body["name"], body["content_type"]) == ("photo.png", "image/png")
    assert body["tags"] == ["roof", "commissioning"]
    assert body["description"] == "Roof, east side"


def test_files_attach_to_an_asset_or_the_organization(
    client: FlaskClient, tenant: Any, site: dict[str, Any]
) -> None:
    headers = tenant.headers()
    gateway = post(
        client,
        "/api/v1/assets",
        {
            "site_id": site["id"],
            "type": "gateway",
            "name": "GW",
            "serial": "GW-F1",
            "config": {
                "ip": "10.0.0.1",
                "subnet": "10.0.0.0/24",
                "upload_interval_s": 60,
                "max_controllers": 4,
                "max_bus_devices": 16,
            },
        },
        headers,
    )
    on_asset = created(put_file(client, headers, PDF, name="manual.pdf", asset_id=gateway["id"]))
    on_org = created(put_file(client, headers, PDF, name="contract.pdf"))
    assert (on_asset["owner_type"], on_asset["owner_id"]) == ("asset", gateway["id"])
    assert (on_org["owner_type"], on_org["owner_id"]) == ("organization", tenant.org_id)
    listed = client.get(f"/api/v1/files?asset_id={gateway['id']}", headers=headers).get_json()
    assert [f["name"] for f in listed["items"]] == ["manual.pdf"]
    listed = client.get("/api/v1/files?owner=organization", headers=headers).get_json()
    assert [f["name"] for f in listed["items"]] == ["contract.pdf"]


def test_listing_pages_and_filters(client: FlaskClient, tenant: Any, site: dict[str, Any]) -> None:
    headers = tenant.headers()
    for index in range(5):
        put_file(client, headers, PDF, name=f"doc-{index}.pdf", folder="/a", site_id=site["id"])
    put_file(client, headers, b"notes", name="notes.txt", folder="/a/b", site_id=site["id"])
    names: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"site_id": site["id"], "folder": "/a", "limit": 2}
        if cursor:
            query["cursor"] = cursor
        page = client.get("/api/v1/files", query_string=query, headers=headers).get_json()
        names += [f["name"] for f in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == [f"doc-{i}.pdf" for i in range(5)]
    texts = client.get(
        "/api/v1/files", query_string={"content_type": "text/plain"}, headers=headers
    ).get_json()
    assert [f["name"] for f in texts["items"]] == ["notes.txt"]
    found = client.get("/api/v1/files", query_string={"q": "doc-3"}, headers=headers).get_json()
    assert [f["name"] for f in found["items"]] == ["doc-3.pdf"]
    folders = client.get(
        "/api/v1/files/folders", query_string={"site_id": site["id"]}, headers=headers
    ).get_json()
    assert folders["subfolders"] == ["/a"]
    bad = client.get("/api/v1/files", query_string={"cursor": "nope"}, headers=headers)
    assert bad.status_code == 400


# --- downloads --------------------------------------------------------------------------


@pytest.fixture
def pdf_file(client: FlaskClient, tenant: Any, site: dict[str, Any]) -> dict[str, Any]:
    return created(put_file(client, tenant.headers(), PDF, name="Schéma.pdf", site_id=site["id"]))


def test_download_headers(client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]) -> None:
    response = client.get(f"/api/v1/files/{pdf_file['id']}/content", headers=tenant.headers())
    assert response.status_code == 200
    assert response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(PDF))
    assert response.headers["ETag"] == f'"{hashlib.sha256(PDF).hexdigest()}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "filename*=UTF-8''Sch%C3%A9ma.pdf" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=0-3", 206, PDF[:4], f"bytes 0-3/{len(PDF)}"),
        ("bytes=-6", 206, PDF[-6:], f"bytes {len(PDF) - 6}-{len(PDF) - 1}/{len(PDF)}"),
        ("bytes=10-", 206, PDF[10:], f"bytes 10-{len(PDF) - 1}/{len(PDF)}"),
        ("bytes=0-1,4-5", 200, PDF, None),  # several ranges: the whole file
        (f"bytes={len(PDF) + 10}-", 416, b"", f"bytes */{len(PDF)}"),
    ],
)
def test_ranges(
    client: FlaskClient,
    tenant: Any,
    pdf_file: dict[str, Any],
    header: str,
    status: int,
    expected: bytes,
    content_range: str | None,
) -> None:
    response = client.get(
        f"/api/v1/files/{pdf_file['id']}/content", headers=tenant.headers(Range=header)
    )
    assert response.status_code == status
    assert response.data == expected
    assert response.headers.get("Content-Range") == content_range


def test_conditional_requests(client: FlaskClient, tenant: Any, pdf_file: dict[str, Any]) -> None:
    url = f"/api/v1/files/{pdf_file['id']}/content"
    etag = client.get(url, headers=tenant.headers()).headers["ETag"]
    assert client.get(url, headers=tenant.headers(**{"If-None-Match": etag})).status_code == 304
    stale = client.get(url, headers=tenant.headers(Range="bytes=0-3", **{"If-Range": '"old"'}))
    assert (stale.status_code, stale.data) == (200, PDF)


def test_corrupted_content_is_never_served_whole(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any], settings: Any
) -> None:
    (stored,) = blob_files(settings.files_path)
    stored.write_bytes(PDF.replace(b"Catalog", b"Catalxg"))  # same size, other bytes
    with pytest.raises(ContentCorrupted):
        client.get(f"/api/v1/files/{pdf_file['id']}/content", headers=tenant.headers())


# --- bad input and limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folder", "path"),
    [
        ("../../etc/passwd", "/", "name"),
        ("a/b.pdf", "/", "name"),
        ("nul\x01.pdf", "/", "name"),
        ("ok.pdf", "/a/../../b", "folder"),
    ],
)
def test_bad_names_are_422_and_store_nothing(
    client: FlaskClient,
    tenant: Any,
    site: dict[str, Any],
    db: Database,
    settings: Any,
    name: str,
    folder: str,
    path: str,
) -> None:
    response = put_file(client, tenant.headers(), PDF, name=name, folder=folder, site_id=site["id"])
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert [e["path"] for e in response.get_json()["errors"]] == [path]
    assert counts(db) == (0, 0)
    assert blob_files(settings.files_path) == []


def test_nul_in_a_query_parameter_is_400(client: FlaskClient, tenant: Any) -> None:
    response = put_file(client, tenant.headers(), PDF, name="a\x00.pdf")
    assert response.status_code == 400


def test_disallowed_content_is_415(
    client: FlaskClient, tenant: Any, site: dict[str, Any], db: Database, settings: Any
) -> None:
    for content, name in ((ELF, "firmware.pdf"), (b"<!doctype html><script>x</script>", "a.txt")):
        response = put_file(client, tenant.headers(), content, name=name, site_id=site["id"])
        assert response.status_code == 415
        assert response.get_json()["type"] == "urn:outpost:problem:unsupported-media-type"
    assert counts(db) == (0, 0)
    assert blob_files(settings.files_path) == []


@pytest.fixture
def small_limits(app: Any) -> None:
    from dataclasses import replace

    from outpost.web.context import EXTENSION

    services = app.extensions[EXTENSION]
    settings = replace(services.settings, file_max_bytes=1000, file_quota_bytes=1200)
    app.extensions[EXTENSION] = replace(services, settings=settings)


@pytest.mark.usefixtures("small_limits")
def test_size_limit_is_413_before_or_while_reading(
    client: FlaskClient, tenant: Any, site: dict[str, Any], db: Database, settings: Any
) -> None:
    declared = put_file(client, tenant.headers(), PDF * 3, name="big.pdf", site_id=site["id"])
    assert declared.status_code == 413
    assert "larger than" in declared.get_json()["detail"]
    streamed = client.put(  # chunked: no Content-Length, refused once past the limit
        "/api/v1/files",
        query_string={"name": "big.pdf", "site_id": site["id"]},
        input_stream=io.BytesIO(b"%PDF-1.4\n" + b"x" * 5000),
        environ_overrides={"wsgi.input_terminated": True},
        headers=tenant.headers(**{"Transfer-Encoding": "chunked"}),
    )
    assert streamed.status_code == 413
    assert counts(db) == (0, 0)
    assert blob_files(settings.files_path) == []


@pytest.mark.usefixtures("small_limits")
def test_quota_is_413_with_its_own_type(
    client: FlaskClient, tenant: Any, site: dict[str, Any], db: Database
) -> None:
    created(put_file(client, tenant.headers(), PDF, name="one.pdf", site_id=site["id"]))
    response = put_file(client, tenant.headers(), PDF, name="two.pdf", site_id=site["id"])
    assert response.status_code == 413
    assert response.get_json()["type"] == "urn:outpost:problem:quota-exceeded"
    assert counts(db) == (1, 1)


# --- permissions and tenants ------------------------------------------------------------


def test_viewers_read_but_cannot_write(
    client: FlaskClient, tenant: Any, pdf_file: dict[str, Any], site: dict[str, Any]
) -> None:
    viewer = tenant.headers("viewer")
    assert client.get(f"/api/v1/files/{pdf_file['id']}/content", headers=viewer).data == PDF
    refused = put_file(client, viewer, PDF, name="x.pdf", site_id=site["id"])
    assert refused.status_code == 403
    patch = client.patch(
        f"/api/v1/files/{pdf_file['id']}",
        json={"name": "y.pdf"},
        headers={**viewer, "If-Match": '"1"'},
    )
    assert patch.status_code == 403
    link = client.post("/api/v1/links", json={"file_id": pdf_file["id"]}, headers=viewer)
    assert link.status_code == 403


def test_another_tenants_files_are_404(
    client: FlaskClient, tenant: Any, other_tenant: Any, pdf_file: dict[str, Any]
) -> None:
    theirs = other_tenant.headers()
    file_id = pdf_file["id"]
    assert client.get(f"/api/v1/files/{file_id}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/files/{file_id}/content", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/files/{file_id}/versions", headers=theirs).status_code == 404
    deleted = client.delete(f"/api/v1/files/{file_id}", headers={**theirs, "If-Match": '"1"'})
    assert deleted.status_code == 404
    link = client.post("/api/v1/links", json={"file_id": file_id}, headers=theirs)
    assert link.status_code == 404
    upload = put_file(client, theirs, PDF, name="x.pdf", site_id=pdf_file["owner_id"])
    assert upload.status_code == 404
    assert client.get("/api/v1/files", headers=theirs).get_json()["items"] == []


# --- metadata, delete, restore, purge ---------------------------------------------------


def test_rename_needs_if_match_and_a_free_name(
    client: FlaskClient, tenant: Any, site: dict[str, Any], pdf_file: dict[str, Any]
) -> None:
    headers = tenant.headers()
    url = f"/api/v1/files/{pdf_file['id']}"
    created(put_file(client, headers, PDF, name="taken.pdf", site_id=site["id"]))
    assert client.patch(url, json={"name": "new.pdf"}, headers=headers).status_code == 428
    stale = client.patch(url, json={"name": "new.pdf"}, headers={**headers, "If-Match": '"9"'})
    assert stale.status_code == 412
    assert stale.get_json()["current"]["name"] == "Schéma.pdf"
    taken = client.patch(url, json={"name": "taken.pdf"}, headers={**headers, "If-Match": '"1"'})
    assert taken.status_code == 409
    assert taken.get_json()["errors"][0]["code"] == "file.name_taken"
    moved = client.patch(
        url,
        json={"name": "wiring.pdf", "folder": "/archive", "tags": ["old"]},
        headers={**headers, "If-Match": '"1"'},
    )
    assert moved.status_code == 200
    assert (moved.get_json()["folder"], moved.get_json()["revision"]) == ("/archive", 2)
    unknown = client.patch(url, json={"owner_id": "x"}, headers={**headers, "If-Match": '"2"'})
    assert unknown.status_code == 422


def test_delete_is_soft_and_restorable(
    client: FlaskClient, tenant: Any, site: dict[str, Any], pdf_file: dict[str, Any]
) -> None:
    headers = tenant.headers()
    url = f"/api/v1/files/{pdf_file['id']}"
    deleted = client.delete(url, headers={**headers, "If-Match": '"1"'})
    assert deleted.status_code == 200
    assert deleted.get_json()["deleted_at"] is not None
    assert client.get(f"{url}/content", headers=headers).status_code == 404
    assert client.get("/api/v1/files", headers=headers).get_json()["items"] == []
    trash = client.get("/api/v1/files?deleted=true", headers=headers).get_json()["items"]
    assert [f["id"] for f in trash] == [pdf_file["id"]]
    again = client.delete(url, headers={**headers, "If-Match": '"2"'})
    assert again.status_code == 409

    # the name is free while the file is in the trash; restoring then collides
    other = created(put_file(client, headers, PDF, name="Schéma.pdf", site_id=site["id"]))
    collide = client.post(f"{url}/restore", headers={**headers, "If-Match": '"2"'})
    assert collide.status_code == 409
    client.delete(f"/api/v1/files/{other['id']}", headers={**headers, "If-Match": '"1"'})
    restored = client.post(f"{url}/restore", headers={**headers, "If-Match": '"2"'})
    assert restored.status_code == 200
    assert client.get(f"{url}/content", headers=headers).data == PDF
    assert "files.file.restored" in actions(client, tenant)


def test_openapi_documents_the_files_api(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get", "post", "put"} <= set(paths["/api/v1/files"])
    upload = paths["/api/v1/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "/api/v1/files/{file_id}/content" in paths
    assert {"/api/v1/links", "/api/v1/links/{link_id}", "/api/v1/shares"} <= set(paths)


# --- found by schemathesis --------------------------------------------------------------


def test_a_multipart_part_without_a_name_is_400(client: FlaskClient, tenant: Any) -> None:
    response = client.post(
        "/api/v1/files",
        data=b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n",
        headers={**tenant.headers(), "Content-Type": "multipart/form-data; boundary=B"},
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_bad_folder_in_the_folder_list_is_400(client: FlaskClient, tenant: Any) -> None:
    response = client.get(
        "/api/v1/files/folders", query_string={"folder": "a" * 256}, headers=tenant.headers()
    )
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "file.folder_invalid"


def test_the_document_has_both_upload_answers(client: FlaskClient) -> None:
    operations = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/files"]
    for method in ("post", "put"):
        assert {"200", "201"} <= set(operations[method]["responses"])
