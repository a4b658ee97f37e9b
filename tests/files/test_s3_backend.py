"""The whole file pole on the S3 backend: the app against moto's S3 server on loopback."""

from __future__ import annotations

import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from outpost.app import create_app
from outpost.db import Database
from outpost.files.storage.s3 import S3BlobStore
from support.files import PDF, created, put_file
from support.s3 import s3_test_settings


@pytest.fixture
def s3_client(s3_endpoint: str, tmp_path: Path, settings: Any, db: Database) -> FlaskClient:
    s3 = s3_test_settings(s3_endpoint, tmp_path)
    S3BlobStore.from_settings(s3).ensure_bucket()
    app = create_app(
        replace(
            settings,
            file_store="s3",
            s3_endpoint_url=s3.s3_endpoint_url,
            s3_bucket=s3.s3_bucket,
            s3_access_key_id=s3.s3_access_key_id,
            s3_secret_access_key=s3.s3_secret_access_key,
        ),
        db,
    )
    return app.test_client()


def test_upload_download_and_presigned_links_on_s3(
    s3_client: FlaskClient, tenant: Any, settings: Any
) -> None:
    headers = tenant.headers()
    big = PDF + bytes(range(256)) * 40_000  # ~10 MiB: a multipart upload
    file = created(put_file(s3_client, headers, big, name="datasheet.pdf"))
    assert file["size"] == len(big)
    assert not settings.files_path.exists()  # nothing went to the local disk

    whole = s3_client.get(f"/api/v1/files/{file['id']}/content", headers=headers)
    assert whole.data == big
    part = s3_client.get(
        f"/api/v1/files/{file['id']}/content", headers={**headers, "Range": "bytes=100-199"}
    )
    assert (part.status_code, part.data) == (206, big[100:200])

    link = s3_client.post("/api/v1/links", json={"file_id": file["id"]}, headers=headers)
    token = link.get_json()["url"].rsplit("/", 1)[1]
    redirect = s3_client.application.test_client().get(f"/l/{token}/download")
    assert redirect.status_code == 303
    presigned = redirect.headers["Location"]
    assert presigned.startswith("http://127.0.0.1:") and "X-Amz-Expires=300" in presigned
    with urllib.request.urlopen(presigned) as response:
        assert response.read() == big
        assert "datasheet.pdf" in response.headers["Content-Disposition"]
