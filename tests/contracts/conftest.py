"""Fixtures for the contract suites: every implementation of a protocol, on real backends.

The S3 blob store talks HTTP to moto's standalone server on loopback, started once per
session; each test gets its own bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from outpost.files.storage import BlobStore
from outpost.files.storage.local import LocalBlobStore
from outpost.files.storage.s3 import S3BlobStore
from support.s3 import s3_test_settings


@pytest.fixture
def s3_store(s3_endpoint: str, tmp_path: Path) -> Iterator[S3BlobStore]:
    store = S3BlobStore.from_settings(s3_test_settings(s3_endpoint, tmp_path))
    store.ensure_bucket()
    yield store
    store.client.close()


@pytest.fixture
def local_store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "files")


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest) -> BlobStore:
    store: BlobStore = request.getfixturevalue(f"{request.param}_store")
    return store
