"""File bytes over HTTP, in and out, for the API and the pages alike.

Uploads stream into the blob store and downloads stream out of it after the request's
transaction is released (no lock is held during a transfer). Downloads answer
``ETag``, conditional requests and single ``Range``s; the body is a generator of
chunks, so memory stays flat whatever the size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Response, request

from outpost.files import service
from outpost.files.names import content_disposition
from outpost.files.schemas import FileUpload
from outpost.files.storage import Readable
from outpost.web.context import actor, release_request_session, services

Chunks = Callable[[int, int | None], Iterator[bytes]]
#: Served files never run as pages of ours: no scripts, no plugins, no framing by others.
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
PDF_POLICY = "default-src 'none'; frame-ancestors 'self'"


def serve(
    chunks: Chunks,
    *,
    size: int,
    sha256: str,
    content_type: str,
    filename: str,
    inline: bool,
) -> Response:
    """A 200, 206, 304 or 416 response for the bytes ``chunks`` reads."""
    etag = f'"{sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Disposition": content_disposition(filename, inline=inline),
        "Content-Security-Policy": PDF_POLICY if content_type == "application/pdf" else FILE_POLICY,
    }
    if request.if_none_match.contains(sha256):
        return Response(status=304, headers=headers)
    byte_range = request.range
    if byte_range is not None and request.if_range.etag not in (None, sha256):
        byte_range = None  # If-Range names another version: send it whole
    if byte_range is not None and len(byte_range.ranges) == 1:
        span = byte_range.range_for_length(size)
        if span is None:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status=416, headers=headers)
        start, stop = span
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        headers["Content-Length"] = str(stop - start)
        return _streamed(chunks(start, stop), 206, headers, content_type)
    headers["Content-Length"] = str(size)
    return _streamed(chunks(0, None), 200, headers, content_type)


def _streamed(
    body: Iterator[bytes], status: int, headers: dict[str, str], content_type: str
) -> Response:
    response = Response(body, status=status, headers=headers, direct_passthrough=True)
    response.content_type = content_type
    return response


class _Bounded:
    """The WSGI input stream, read up to the request's ``Content-Length``."""

    def __init__(self, source: Readable, length: int) -> None:
        self._source = source
        self._left = length

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._source.read(wanted) if wanted else b""
        self._left -= len(data)
        return data


def request_body() -> Readable:
    """The raw request body, for streaming uploads.

    werkzeug's ``request.stream`` copies every chunk twice on its way through; reading
    the WSGI input directly, bounded by ``Content-Length`` (or by the server's end of a
    chunked body), spares that. The size limit is the upload's own (``UploadReader``).
    """
    environ = request.environ
    if request.content_length is not None:
        return _Bounded(environ["wsgi.input"], request.content_length)
    if environ.get("wsgi.input_terminated"):
        source: Readable = environ["wsgi.input"]
        return source
    return request.stream  # no length, no end: werkzeug reads nothing from it, safely


def receive_upload(
    upload: FileUpload, body: Readable, declared_size: int | None
) -> service.Uploaded:
    """Store ``body`` as ``upload`` describes, streaming outside any transaction."""
    who = actor()
    release_request_session()
    found = services()
    return service.upload_file(
        found.db,
        found.blobs,
        who,
        upload,
        body,
        declared_size=declared_size,
        limits=service.FileLimits.from_settings(found.settings),
    )


def send_version(file_id: str, number: int | None, *, inline: bool) -> Response:
    """Authorize, audit and stream one version of a file to a logged-in caller."""
    who = actor()
    release_request_session()
    found = services()
    return send(service.open_download(found.db, found.blobs, who, file_id, number), inline=inline)


def send(opened: service.Download, *, inline: bool) -> Response:
    return serve(
        opened.chunks,
        size=opened.version.size,
        sha256=opened.version.sha256,
        content_type=opened.version.content_type,
        filename=opened.file.name,
        inline=inline,
    )
