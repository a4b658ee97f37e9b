"""Upload shortcuts and sample contents for the file pole's tests."""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient

PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 20 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 200


def put_file(
    client: FlaskClient,
    headers: dict[str, str],
    content: bytes,
    *,
    name: str = "report.pdf",
    folder: str = "/",
    **place: str,
) -> Any:
    """Upload ``content`` with a raw PUT; returns the response."""
    query = {"name": name, "folder": folder, **place}
    return client.put("/api/v1/files", query_string=query, data=content, headers=headers)


def upload_form(
    client: FlaskClient, headers: dict[str, str], content: bytes, filename: str, **fields: str
) -> Any:
    data: dict[str, Any] = {"file": (io.BytesIO(content), filename), **fields}
    return client.post(
        "/api/v1/files", data=data, headers=headers, content_type="multipart/form-data"
    )


def created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.get_json()
    body: dict[str, Any] = response.get_json()
    return body
