"""Content types come from the bytes, never from the name a client gives."""

from __future__ import annotations

import pytest

from outpost.files.sniff import sniff


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"%PDF-1.7\n...", "x.pdf", "application/pdf"),
        (b"%PDF-1.7\n...", "looks-like.png", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n....", "x.png", "image/png"),
        (b"\xff\xd8\xff\xe0....", "x.jpg", "image/jpeg"),
        (b"GIF89a....", "x.gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x.webp", "image/webp"),
        (
            b"PK\x03\x04....",
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"PK\x03\x04....", "archive.zip", "application/zip"),
        (b"\x1f\x8b\x08....", "x.gz", "application/gzip"),
        (b"\x7fELF\x02\x01", "firmware.pdf", "application/x-executable"),
        (b"MZ\x90\x00", "setup.pdf", "application/x-msdownload"),
        (b"plain words\n", "notes.txt", "text/plain"),
        (b"a,b\n1,2\n", "data.csv", "text/csv"),
        (b'{"a": 1}', "x.json", "application/json"),
        (b"  <!DOCTYPE html><script>", "page.txt", "text/html"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", "icon.png", "image/svg+xml"),
        (b"\x00\x01\x02\x03", "blob.bin", "application/octet-stream"),
        (b"caf\xc3", "cut.txt", "text/plain"),  # a sample cut inside a UTF-8 character
    ],
)
def test_sniff(head: bytes, filename: str, expected: str) -> None:
    assert sniff(head, filename) == expected
