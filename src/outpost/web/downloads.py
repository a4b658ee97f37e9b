"""Serving stored bytes over HTTP: ``ETag``, conditional requests and single ``Range``s.

The body is a generator of chunks, so memory stays flat whatever the size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Response, request

from outpost.files.names import content_disposition

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
