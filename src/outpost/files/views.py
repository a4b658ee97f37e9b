"""File pages: the file browser, a file's page (preview, versions, sharing), the trash,
and the public side of expiring links.

``bp`` holds the pages of logged-in users. Each handler parses the form, calls one
service function and renders; uploads and downloads stream outside the request's
transaction, like the API's. ``browser()`` gives the site and asset pages their file
browser.

``public`` holds the only file routes reachable without logging in (they are in the
authentication allowlist): the link page, its download, and the short-lived signed
URL the local backend serves. Holding the link's token (and its password) is the
permission; every use is counted and audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from outpost.clock import utcnow
from outpost.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    PreconditionFailed,
    RuleViolation,
)
from outpost.files import names, queries, service, sharing, signing
from outpost.files.models import File
from outpost.files.schemas import (
    DownloadQuery,
    FileFilter,
    FileUpdate,
    FileUpload,
    FolderQuery,
    LinkCreate,
    ShareCreate,
)
from outpost.files.sharing import LinkView
from outpost.identity import service as identity
from outpost.identity.principal import Principal
from outpost.inventory import service as inventory
from outpost.pagination import Page
from outpost.validation import Violation
from outpost.web import auth, forms, transfers
from outpost.web.bodies import large_body
from outpost.web.context import (
    actor,
    principal,
    release_request_session,
    request_meta,
    services,
    transaction,
)
from outpost.web.problems import status_of

public = Blueprint("files_public", __name__, template_folder="templates")


@public.get("/l/<token>")
def link(token: str) -> str:
    with transaction() as session:
        view = sharing.inspect_link(session, token)
        return render_template("files/link.html", view=view, token=token, wrong=False)


def _redirect_to_content(view: LinkView) -> Response:
    found = services()
    version = view.version
    url = found.blobs.signed_url(
        version.blob_key,
        filename=view.file.name,
        content_type=version.content_type,
        expires_in=signing.SIGNED_URL_LIFETIME,
    )
    if url is None:
        signed = signing.sign_download(found.settings.secret_key, version.id)
        url = url_for("files_public.signed", token=signed)
    return redirect(url, code=303)


@public.post("/l/<token>")
def use_link(token: str) -> Response | tuple[str, int]:
    auth.check_csrf()  # public, but a form: still CSRF-protected
    release_request_session()
    try:
        view = sharing.use_link(
            services().db, token, request.form.get("password"), request_meta("link download")
        )
    except Forbidden:  # a wrong password: ask again, on the same page
        with transaction() as session:
            shown = sharing.inspect_link(session, token)
            return render_template("files/link.html", view=shown, token=token, wrong=True), 403
    return _redirect_to_content(view)


@public.get("/l/<token>/download")
def link_download(token: str) -> Response:
    """For scripts (curl -L): links without a password download in one GET."""
    release_request_session()
    view = sharing.use_link(services().db, token, None, request_meta("link download"))
    return _redirect_to_content(view)


@public.get("/dl/<token>")
def signed(token: str) -> Response:
    found = services()
    version_id = signing.read_download(found.settings.secret_key, token)
    with transaction() as session:
        opened = service.open_signed(session, found.blobs, version_id)
    return transfers.send(opened, inline=False)


# === pages of logged-in users ===========================================================

bp = Blueprint("files", __name__, template_folder="templates")

View = str | tuple[str, int] | Response
PAGE_SIZE = 50
#: Types a browser shows in an ``<img>``; TIFF and the rest get a download link only.
IMAGE_PREVIEWS = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
EDIT_FIELDS = ("name", "folder", "description", "tags")
SHARE_FIELDS = ("grantee_type", "grantee_id", "access", "expires_at")
LINK_FIELDS = ("expires_in_hours", "password", "max_downloads")
SHARE_DEFAULT_DAYS = 30
ROLES = ("viewer", "operator", "admin")


def with_notice(target: str | None, notice: str) -> str:
    """``target`` (a local path, else ``/``) with ``?notice=`` set, other parameters kept."""
    parts = urlsplit(forms.local_path(target))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "notice"]
    query.append(("notice", notice))
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


def _folder_url(base: str, folder: str) -> str:
    return base if folder == names.ROOT else f"{base}?{urlencode({'folder': folder})}"


# --- owners -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """What a file belongs to, as the pages name and link it."""

    kind: str  # "organization", "site" or "asset"
    label: str
    url: str | None  # the owner's page, which holds its file browser

    def folder_url(self, folder: str) -> str | None:
        return None if self.url is None else _folder_url(self.url, folder) + "#files"


def _owner(session: Session, who: Principal, owner_type: str, owner_id: str) -> Owner:
    if owner_type == "site":
        site = inventory.get_site(session, who, owner_id)
        return Owner("site", site.name, url_for("inventory.site", site_id=site.id))
    if owner_type == "asset":
        asset = inventory.get_asset(session, who, owner_id)
        return Owner("asset", asset.name, url_for("inventory.asset", asset_id=asset.id))
    return Owner("organization", "the organization", None)


# --- the browser on site and asset pages ------------------------------------------------


@dataclass(frozen=True)
class Crumb:
    label: str
    folder: str


@dataclass(frozen=True)
class Browser:
    """One folder of a site's or an asset's files, as ``files/_browser.html`` shows it."""

    site_id: str | None
    asset_id: str | None
    folder: str
    crumbs: list[Crumb]
    subfolders: list[str]
    page: Page[File]
    cursor: str | None
    here: str  # this page at this folder: where an upload returns to


def _crumbs(folder: str) -> list[Crumb]:
    parts = [part for part in folder.split("/") if part]
    return [Crumb("Files", names.ROOT)] + [
        Crumb(part, "/" + "/".join(parts[: index + 1])) for index, part in enumerate(parts)
    ]


def browser(
    session: Session,
    who: Principal,
    args: Mapping[str, str],
    *,
    site_id: str | None = None,
    asset_id: str | None = None,
) -> Browser:
    """The folder ``?folder=`` (default ``/``) of a site's or an asset's files, one page."""
    shown = forms.query_values(args, ("folder", "cursor"))
    filters = forms.parse(
        FileFilter,
        {**shown, "site_id": site_id, "asset_id": asset_id, "limit": PAGE_SIZE},
    )
    folder, problems = names.normalize_folder(filters.folder or names.ROOT)
    if problems:
        raise BadRequest("The folder is not valid.", problems)
    page = queries.list_files(session, who, filters.model_copy(update={"folder": folder}))
    subfolders = queries.list_subfolders(
        session, who, FolderQuery(site_id=site_id, asset_id=asset_id, folder=folder)
    )
    return Browser(
        site_id,
        asset_id,
        folder,
        _crumbs(folder),
        subfolders,
        page,
        filters.cursor,
        _folder_url(request.path, folder),
    )


# --- upload and download ----------------------------------------------------------------


def _wants_json() -> bool:
    """The upload script asks for JSON; a plain form gets redirected."""
    best = request.accept_mimetypes.best_match(("text/html", "application/json"))
    return best == "application/json"


@bp.post("/files/upload")
@large_body
def upload() -> Response:
    part = request.files.get("file")
    if part is None or not part.filename:
        message = "Choose a file to upload."
        raise BadRequest(message, [Violation("file.missing", message, "file")])
    fields = forms.query_values(request.form, ("site_id", "asset_id", "folder", "description"))
    tags = forms.split_tags(request.form.get("tags", ""))
    upload = forms.parse(FileUpload, {**fields, "name": part.filename, "tags": tags})
    uploaded = transfers.receive_upload(upload, part.stream, None)
    url = url_for(".detail", file_id=uploaded.file.id)
    if _wants_json():
        response = jsonify(
            {
                "id": uploaded.file.id,
                "name": uploaded.file.name,
                "version": uploaded.version.number,
                "url": url,
            }
        )
        response.status_code = 201 if uploaded.created else 200
        return response
    return redirect(with_notice(request.form.get("next") or url, "file-uploaded"), 303)


@bp.get("/files/<file_id>/download")
def content(file_id: str) -> Response:
    query = forms.parse(DownloadQuery, forms.query_values(request.args, ("version", "inline")))
    return transfers.send_version(file_id, query.version, inline=query.inline)


# --- a file's page ----------------------------------------------------------------------


@dataclass
class FileForms:
    """What a file's page shows in its forms and dialog besides the stored file."""

    values: Mapping[str, str] | None = None
    errors: forms.FormErrors = field(default_factory=lambda: forms.NO_ERRORS)
    problem: str | None = None
    stale: str | None = None
    share_open: bool = False
    share_values: Mapping[str, str] = field(default_factory=dict)
    share_errors: forms.FormErrors = field(default_factory=lambda: forms.NO_ERRORS)
    link_values: Mapping[str, str] = field(default_factory=dict)
    link_errors: forms.FormErrors = field(default_factory=lambda: forms.NO_ERRORS)
    issued_url: str | None = None


def _preview(content_type: str) -> str | None:
    if content_type in IMAGE_PREVIEWS:
        return "image"
    if content_type == "application/pdf":
        return "pdf"
    return None


def _edit_values(file: File) -> dict[str, str]:
    return {
        "name": file.name,
        "folder": file.folder,
        "description": file.description,
        "tags": ", ".join(file.tags),
    }


def _detail_html(file_id: str, state: FileForms) -> str:
    now = utcnow()
    with transaction() as session:
        who = principal()
        file = service.get_file(session, who, file_id)
        members = identity.list_members(session, who)
        html = render_template(
            "files/file_detail.html",
            file=file,
            owner=_owner(session, who, file.owner_type, file.owner_id),
            versions=service.list_versions(session, who, file.id),
            writable=service.may_write(session, who, file),
            shares=sharing.list_shares(session, who, file.id),
            links=sharing.list_links(session, who, file.id),
            members=members,
            emails={member.user_id: member.email for member in members},
            preview=_preview(file.content_type),
            form=state,
            values=state.values if state.values is not None else _edit_values(file),
            roles=ROLES,
            now=now,
            share_expiry=(now + timedelta(days=SHARE_DEFAULT_DAYS)).strftime("%Y-%m-%dT%H:%M"),
            link_max_hours=services().settings.link_max_hours,
        )
    return html


def _render_detail(file_id: str, state: FileForms | None = None, status: int = 200) -> View:
    state = state or FileForms(share_open=request.args.get("share") == "1")
    return _detail_html(file_id, state), status


@bp.get("/files/<file_id>")
def detail(file_id: str) -> View:
    return _render_detail(file_id)


@bp.post("/files/<file_id>")
def update(file_id: str) -> View:
    form = request.form
    revision = forms.revision(form)
    try:
        changes = forms.parse(
            FileUpdate,
            {
                "name": form.get("name", ""),
                "folder": form.get("folder", ""),
                "description": form.get("description", ""),
                "tags": forms.split_tags(form.get("tags", "")),
            },
        )
        with transaction() as session:
            service.update_file(session, actor(), file_id, changes, if_revision=revision)
    except (BadRequest, RuleViolation, Conflict) as exc:
        errors = forms.split_violations(exc.violations, file_id, EDIT_FIELDS)
        state = FileForms(values=form, errors=errors, problem=exc.detail)
        return _render_detail(file_id, state, status_of(exc))
    except PreconditionFailed as exc:
        return _render_detail(file_id, FileForms(stale=exc.detail), 409)
    return redirect(url_for(".detail", file_id=file_id, notice="file-saved"), 303)


TrashMove = Callable[..., File]


def _move(file_id: str, move: TrashMove, notice: str, back: str | None = None) -> View:
    """Delete or restore from a form: a refusal re-renders the page with the reason."""
    revision = forms.revision(request.form)
    try:
        with transaction() as session:
            move(session, actor(), file_id, if_revision=revision)
    except Conflict as exc:
        return _render_detail(file_id, FileForms(problem=exc.detail), 409)
    except PreconditionFailed as exc:
        return _render_detail(file_id, FileForms(stale=exc.detail), 409)
    return redirect(with_notice(back or url_for(".detail", file_id=file_id), notice), 303)


@bp.post("/files/<file_id>/delete")
def delete(file_id: str) -> View:
    return _move(file_id, service.delete_file, "file-deleted")


@bp.post("/files/<file_id>/restore")
def restore(file_id: str) -> View:
    return _move(file_id, service.restore_file, "file-restored", request.form.get("next"))


# --- sharing ----------------------------------------------------------------------------


@bp.post("/files/<file_id>/shares")
def share(file_id: str) -> View:
    form = request.form
    values = forms.query_values(form, SHARE_FIELDS)
    if "expires_at" in values:
        values["expires_at"] = forms.utc_text(values["expires_at"])
    try:
        body = forms.parse(ShareCreate, values)
        with transaction() as session:
            sharing.share_file(session, actor(), file_id, body)
    except BadRequest as exc:
        errors = forms.split_violations(exc.violations, None, SHARE_FIELDS)
        state = FileForms(share_open=True, share_values=form, share_errors=errors)
        return _render_detail(file_id, state, 400)
    return redirect(url_for(".detail", file_id=file_id, share=1, notice="share-created"), 303)


@bp.post("/files/shares/<share_id>/revoke")
def revoke_share(share_id: str) -> Response:
    with transaction() as session:
        revoked = sharing.revoke_share(session, actor(), share_id)
        file_id = revoked.file_id
    fallback = url_for(".detail", file_id=file_id, share=1) if file_id else "/"
    return redirect(with_notice(request.form.get("next") or fallback, "share-revoked"), 303)


@bp.post("/files/<file_id>/links")
def create_link(file_id: str) -> View:
    values = forms.query_values(request.form, LINK_FIELDS)
    try:
        body = forms.parse(LinkCreate, {**values, "file_id": file_id})
        with transaction() as session:
            issued = sharing.create_link(
                session, actor(), body, max_lifetime=services().settings.link_max_lifetime
            )
            url = url_for("files_public.link", token=issued.token, _external=True)
    except BadRequest as exc:
        shown = {k: v for k, v in values.items() if k != "password"}
        errors = forms.split_violations(exc.violations, None, LINK_FIELDS)
        state = FileForms(share_open=True, link_values=shown, link_errors=errors)
        return _render_detail(file_id, state, 400)
    html = _detail_html(file_id, FileForms(issued_url=url))
    response = Response(html, status=201, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # the page holds the link's secret
    return response


@bp.post("/files/links/<link_id>/revoke")
def revoke_link(link_id: str) -> Response:
    with transaction() as session:
        file_id = sharing.revoke_link(session, actor(), link_id).file_id
    return redirect(url_for(".detail", file_id=file_id, share=1, notice="link-revoked"), 303)


# --- the trash --------------------------------------------------------------------------


@bp.get("/files/trash")
def trash() -> str:
    shown = forms.query_values(request.args, ("site_id", "asset_id", "cursor"))
    filters = forms.parse(FileFilter, {**shown, "deleted": True, "limit": PAGE_SIZE})
    with transaction() as session:
        who = principal()
        page = queries.list_files(session, who, filters)
        owner = None
        if filters.site_id:
            owner = _owner(session, who, "site", filters.site_id)
        elif filters.asset_id:
            owner = _owner(session, who, "asset", filters.asset_id)
        return render_template(
            "files/trash.html",
            page=page,
            owner=owner,
            shown=shown,
            retention_days=services().settings.file_retention_days,
        )
