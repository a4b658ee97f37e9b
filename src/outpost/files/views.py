"""File pages: the public side of expiring links, and signed downloads.

``public`` holds the only file routes reachable without logging in (they are in the
authentication allowlist): the link page, its download, and the short-lived signed
URL the local backend serves. Holding the link's token (and its password) is the
permission; every use is counted and audited.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from outpost.errors import Forbidden
from outpost.files import service, sharing, signing
from outpost.files.sharing import LinkView
from outpost.web import auth, downloads
from outpost.web.context import release_request_session, request_meta, services, transaction

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
    return downloads.serve(
        opened.chunks,
        size=opened.version.size,
        sha256=opened.version.sha256,
        content_type=opened.version.content_type,
        filename=opened.file.name,
        inline=False,
    )
