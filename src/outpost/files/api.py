"""Files REST API: ``/api/v1/files``, ``/api/v1/shares`` and ``/api/v1/links``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from outpost.errors import BadRequest
from outpost.files import queries, service, sharing
from outpost.files.models import File, FileLink, FileShare
from outpost.files.schemas import (
    DownloadQuery,
    FileFilter,
    FileOut,
    FileUpdate,
    FileUpload,
    FolderOut,
    FolderQuery,
    FolderShareCreate,
    LinkCreate,
    LinkFilter,
    LinkIssued,
    LinkOut,
    ShareCreate,
    ShareOut,
    VersionOut,
)
from outpost.files.storage import Readable
from outpost.web import transfers
from outpost.web.bodies import large_body
from outpost.web.context import actor, principal, services, transaction
from outpost.web.forms import parse, split_tags
from outpost.web.openapi import endpoint, if_match_revision
from outpost.web.pages import Paged, paged
from outpost.web.responses import created, with_etag

bp = Blueprint("files_api", __name__, url_prefix="/api/v1")

UPLOAD_ERRORS = {
    409: "Conflict",
    413: "Larger than the file limit or the quota",
    415: "Content type not accepted",
    422: "Validation failed",
}
MULTIPART_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "name": {"type": "string", "description": "defaults to the uploaded file name"},
                "site_id": {"type": "string"},
                "asset_id": {"type": "string"},
                "folder": {"type": "string", "default": "/"},
                "description": {"type": "string"},
                "tags": {"type": "string", "description": "comma-separated"},
            },
            "required": ["file"],
        }
    }
}
RAW_BODY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def file_out(file: File) -> dict[str, Any]:
    return FileOut.model_validate(file).model_dump(mode="json")


def _stored(upload: FileUpload, body: Readable, declared_size: int | None) -> Response:
    uploaded = transfers.receive_upload(upload, body, declared_size)
    response = with_etag(
        file_out(uploaded.file), uploaded.file.revision, 201 if uploaded.created else 200
    )
    response.headers["Location"] = url_for("files_api.get_file", file_id=uploaded.file.id)
    return response


# --- files ------------------------------------------------------------------------------


@bp.get("/files")
@endpoint(summary="List files", tag="files", query=FileFilter, response=Paged)
def list_files(query: FileFilter) -> Response:
    with transaction() as session:
        page = queries.list_files(session, principal(), query)
        return jsonify(paged([file_out(f) for f in page.items], page.next_cursor))


@bp.post("/files")
@large_body
@endpoint(
    summary="Upload a file (multipart form); an existing name gets a new version",
    tag="files",
    response=FileOut,
    status=201,
    also_status=200,
    etag=True,
    request_body=MULTIPART_BODY,
    extra_responses=UPLOAD_ERRORS,
)
def upload_form() -> Response:
    part = request.files.get("file")
    if part is None:
        raise BadRequest("Send the file in a multipart form field named 'file'.")
    fields = {k: v for k, v in request.form.items() if k != "tags" and v.strip()}
    fields.setdefault("name", part.filename or "")
    fields["tags"] = split_tags(request.form.get("tags", ""))  # type: ignore[assignment]
    return _stored(parse(FileUpload, fields), part.stream, None)


@bp.put("/files")
@large_body
@endpoint(
    summary="Upload a file as the raw request body; an existing name gets a new version",
    tag="files",
    query=FileUpload,
    response=FileOut,
    status=201,
    also_status=200,
    etag=True,
    request_body=RAW_BODY,
    extra_responses=UPLOAD_ERRORS,
)
def upload_raw(query: FileUpload) -> Response:
    return _stored(query, transfers.request_body(), request.content_length)


@bp.get("/files/folders")
@endpoint(
    summary="The subfolders of a folder that hold files",
    tag="files",
    query=FolderQuery,
    response=FolderOut,
)
def list_folders(query: FolderQuery) -> Response:
    with transaction() as session:
        subfolders = queries.list_subfolders(session, principal(), query)
        return jsonify(FolderOut(folder=query.folder, subfolders=subfolders).model_dump())


@bp.get("/files/<file_id>")
@endpoint(summary="Get a file's metadata", tag="files", response=FileOut, etag=True)
def get_file(file_id: str) -> Response:
    with transaction() as session:
        file = service.get_file(session, principal(), file_id)
        return with_etag(file_out(file), file.revision)


@bp.patch("/files/<file_id>")
@endpoint(
    summary="Rename, move or describe a file",
    tag="files",
    body=FileUpdate,
    response=FileOut,
    if_match=True,
    etag=True,
    extra_responses={409: "The name is taken"},
)
def update_file(file_id: str, body: FileUpdate) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        file = service.update_file(session, actor(), file_id, body, if_revision=revision)
        return with_etag(file_out(file), file.revision)


@bp.delete("/files/<file_id>")
@endpoint(
    summary="Delete a file (kept in the trash for the retention period)",
    tag="files",
    response=FileOut,
    if_match=True,
    etag=True,
    extra_responses={409: "Already deleted"},
)
def delete_file(file_id: str) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        file = service.delete_file(session, actor(), file_id, if_revision=revision)
        return with_etag(file_out(file), file.revision)


@bp.post("/files/<file_id>/restore")
@endpoint(
    summary="Restore a deleted file",
    tag="files",
    response=FileOut,
    if_match=True,
    etag=True,
    extra_responses={409: "Not deleted, or its name is taken again"},
)
def restore_file(file_id: str) -> Response:
    revision = if_match_revision()
    with transaction() as session:
        file = service.restore_file(session, actor(), file_id, if_revision=revision)
        return with_etag(file_out(file), file.revision)


@bp.get("/files/<file_id>/versions")
@endpoint(summary="A file's versions, newest first", tag="files", response=Paged)
def list_versions(file_id: str) -> Response:
    with transaction() as session:
        versions = service.list_versions(session, principal(), file_id)
        items = [VersionOut.model_validate(v).model_dump(mode="json") for v in versions]
        return jsonify(paged(items, None))


@bp.get("/files/<file_id>/content")
@endpoint(
    summary="Download a file (Range, ETag and If-None-Match supported)",
    tag="files",
    query=DownloadQuery,
    binary_response=True,
    extra_responses={416: "Range not satisfiable"},
)
def download(file_id: str, query: DownloadQuery) -> Response:
    return transfers.send_version(file_id, query.version, inline=query.inline)


# --- shares -----------------------------------------------------------------------------


def share_out(share: FileShare) -> dict[str, Any]:
    return ShareOut.model_validate(share).model_dump(mode="json")


@bp.get("/files/<file_id>/shares")
@endpoint(summary="Shares that reach a file (its own and its folders')", tag="files")
def list_shares(file_id: str) -> Response:
    with transaction() as session:
        shares = sharing.list_shares(session, principal(), file_id)
        return jsonify(paged([share_out(s) for s in shares], None))


@bp.post("/files/<file_id>/shares")
@endpoint(
    summary="Share a file with a member or a role until a date",
    tag="files",
    body=ShareCreate,
    response=ShareOut,
    status=201,
)
def share_file(file_id: str, body: ShareCreate) -> Response:
    with transaction() as session:
        return created(share_out(sharing.share_file(session, actor(), file_id, body)))


@bp.post("/shares")
@endpoint(
    summary="Share a folder (and everything below it) with a member or a role",
    tag="files",
    body=FolderShareCreate,
    response=ShareOut,
    status=201,
)
def share_folder(body: FolderShareCreate) -> Response:
    with transaction() as session:
        return created(share_out(sharing.share_folder(session, actor(), body)))


@bp.delete("/shares/<share_id>")
@endpoint(
    summary="Revoke a share", tag="files", response=ShareOut, extra_responses={409: "Revoked"}
)
def revoke_share(share_id: str) -> Response:
    with transaction() as session:
        return jsonify(share_out(sharing.revoke_share(session, actor(), share_id)))


# --- links ------------------------------------------------------------------------------


def link_out(link: FileLink) -> dict[str, Any]:
    return LinkOut.model_validate(link).model_dump(mode="json")


@bp.get("/links")
@endpoint(summary="A file's expiring links", tag="files", query=LinkFilter, response=Paged)
def list_links(query: LinkFilter) -> Response:
    with transaction() as session:
        links = sharing.list_links(session, principal(), query.file_id)
        return jsonify(paged([link_out(link) for link in links], None))


@bp.post("/links")
@endpoint(
    summary="Create an expiring download link (its URL is shown once)",
    tag="files",
    body=LinkCreate,
    response=LinkIssued,
    status=201,
    extra_responses={409: "The file is deleted"},
)
def create_link(body: LinkCreate) -> Response:
    with transaction() as session:
        issued = sharing.create_link(
            session, actor(), body, max_lifetime=services().settings.link_max_lifetime
        )
        url = url_for("files_public.link", token=issued.token, _external=True)
        return created({**link_out(issued.link), "url": url}, holds_secret=True)


@bp.delete("/links/<link_id>")
@endpoint(summary="Revoke a link", tag="files", response=LinkOut, extra_responses={409: "Revoked"})
def revoke_link(link_id: str) -> Response:
    with transaction() as session:
        return jsonify(link_out(sharing.revoke_link(session, actor(), link_id)))
