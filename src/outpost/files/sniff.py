"""The content type of a file, read from its first bytes, never from its name or header.

Signatures are data: each is a prefix at an offset and the type it proves. Zip
containers are told apart by the file extension only among the Office formats they
can hold. Text is UTF-8 without NUL bytes; HTML and SVG are recognised so that they
can be refused (a stored page served back would run scripts on Outpost's origin).
"""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 8192
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Signature:
    offset: int
    prefix: bytes
    content_type: str


SIGNATURES: tuple[Signature, ...] = (
    Signature(0, b"%PDF-", "application/pdf"),
    Signature(0, b"\x89PNG\r\n\x1a\n", "image/png"),
    Signature(0, b"\xff\xd8\xff", "image/jpeg"),
    Signature(0, b"GIF87a", "image/gif"),
    Signature(0, b"GIF89a", "image/gif"),
    Signature(8, b"WEBP", "image/webp"),
    Signature(0, b"II*\x00", "image/tiff"),
    Signature(0, b"MM\x00*", "image/tiff"),
    Signature(0, b"PK\x03\x04", "application/zip"),
    Signature(0, b"PK\x05\x06", "application/zip"),
    Signature(0, b"\x1f\x8b", "application/gzip"),
    Signature(0, b"\x7fELF", "application/x-executable"),
    Signature(0, b"MZ", "application/x-msdownload"),
    Signature(0, b"#!", "text/x-shellscript"),
)

#: Zip-based formats, told apart by extension once the bytes prove a zip archive.
ZIP_EXTENSIONS = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
TEXT_EXTENSIONS = {".csv": "text/csv", ".json": "application/json"}
MARKUP_MARKERS = (
    (b"<!doctype html", "text/html"),
    (b"<html", "text/html"),
    (b"<script", "text/html"),
    (b"<svg", "image/svg+xml"),
    (b"<?xml", "application/xml"),
)


def sniff(head: bytes, filename: str) -> str:
    """The content type of a file starting with ``head`` (its first ``SNIFF_BYTES``)."""
    extension = _extension(filename)
    for signature in SIGNATURES:
        if head[signature.offset : signature.offset + len(signature.prefix)] == signature.prefix:
            if signature.content_type == "application/zip":
                return ZIP_EXTENSIONS.get(extension, signature.content_type)
            return signature.content_type
    if _is_text(head):
        start = head.lstrip().lower()
        for marker, content_type in MARKUP_MARKERS:
            if start.startswith(marker):
                return content_type
        return TEXT_EXTENSIONS.get(extension, "text/plain")
    return OCTET_STREAM


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # the sample may end inside a multi-byte character
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
