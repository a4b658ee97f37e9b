"""The ``BlobStore`` contract, over every implementation: local disk and S3 (moto on loopback).

Uploads come from readers that cannot seek, do not know their size and return short
reads, like a request body. Large ones cross the S3 multipart threshold.
"""

from __future__ import annotations

import hashlib
import random
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outpost.files.names import content_disposition
from outpost.files.storage import CHUNK_BYTES, BlobMissing, BlobStore
from outpost.files.storage.s3 import MULTIPART_THRESHOLD, S3BlobStore
from support.s3 import s3_test_settings

MIB = 1024 * 1024
KEY = "org1/blob1"
BIG = 20 * MIB
assert BIG > 2 * MULTIPART_THRESHOLD


class Broke(Exception):
    """Raised by a reader midway, standing in for a caller's own error (PayloadTooLarge)."""


def random_bytes(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, seed: int = 11) -> Iterator[bytes]:
    """``data`` in uneven pieces, from a few bytes to a little over a MiB."""
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        size = rng.choice([1, 17, 4096, 65_536, MIB + 3])
        yield data[offset : offset + size]
        offset += size


class StreamReader:
    """A request-body-like source: only ``read``, no seek, no size, short reads.

    With ``fail_after``, raises ``Broke`` once that many bytes have been handed out,
    after calling ``before_failing``.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        fail_after: int | None = None,
        before_failing: Callable[[], None] = lambda: None,
    ) -> None:
        self._chunks = chunks
        self._pending = b""
        self._fail_after = fail_after
        self._before_failing = before_failing
        self.handed_out = 0
        self.error: Broke | None = None

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self.handed_out >= self._fail_after:
            self._before_failing()
            self.error = Broke(f"reader broke after {self.handed_out} bytes")
            raise self.error
        if not self._pending:
            self._pending = next(self._chunks, b"")
        data = self._pending if size < 0 else self._pending[:size]
        self._pending = self._pending[len(data) :]
        self.handed_out += len(data)
        return data


def reader(
    data: bytes, *, fail_after: int | None = None, before_failing: Callable[[], None] = lambda: None
) -> StreamReader:
    return StreamReader(pieces(data), fail_after=fail_after, before_failing=before_failing)


def read_all(store: BlobStore, key: str, start: int = 0, stop: int | None = None) -> bytes:
    return b"".join(store.read(key, start=start, stop=stop))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- put and read --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * MIB + 1], ids=["empty", "one-byte", "5MiB"])
def test_put_then_read_returns_the_same_bytes(blob_store: BlobStore, size: int) -> None:
    data = random_bytes(size)

    assert blob_store.put(KEY, reader(data), content_type="application/octet-stream") == size

    assert blob_store.exists(KEY)
    assert read_all(blob_store, KEY) == data


def test_a_large_stream_goes_through_whole(blob_store: BlobStore) -> None:
    data = random_bytes(BIG)

    size = blob_store.put(KEY, reader(data), content_type="application/octet-stream")

    assert size == BIG
    chunks = list(blob_store.read(KEY))
    assert all(len(chunk) <= CHUNK_BYTES for chunk in chunks)
    assert digest(b"".join(chunks)) == digest(data)


def test_put_replaces_the_content(blob_store: BlobStore) -> None:
    blob_store.put(KEY, reader(b"first version"), content_type="text/plain")
    blob_store.put(KEY, reader(b"second"), content_type="text/plain")

    assert read_all(blob_store, KEY) == b"second"


# -- ranges --------------------------------------------------------------------------------

RANGE_DATA = random_bytes(3 * MIB + 5)
N = len(RANGE_DATA)


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        pytest.param(0, None, id="whole"),
        pytest.param(10, None, id="start-only"),
        pytest.param(10, 20, id="start-stop"),
        pytest.param(MIB - 1, 2 * MIB + 1, id="across-chunks"),
        pytest.param(0, 1, id="first-byte"),
        pytest.param(N - 1, N, id="last-byte"),
        pytest.param(N - 1, None, id="last-byte-open"),
        pytest.param(5, 5, id="empty"),
        pytest.param(N - 10, N + 100, id="stop-past-end"),
        pytest.param(N, None, id="start-at-end"),
    ],
)
def test_read_a_range(blob_store: BlobStore, start: int, stop: int | None) -> None:
    blob_store.put(KEY, reader(RANGE_DATA), content_type="application/octet-stream")

    assert read_all(blob_store, KEY, start, stop) == RANGE_DATA[start:stop]


@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, None), (3, None), (3, 9), (4, 4)],
    ids=["whole", "from", "range", "empty"],
)
def test_reading_a_missing_key_raises_at_call_time(
    blob_store: BlobStore, start: int, stop: int | None
) -> None:
    with pytest.raises(BlobMissing):
        blob_store.read("org1/missing", start=start, stop=stop)  # not iterated


# -- delete and exists ---------------------------------------------------------------------


def test_delete_removes_and_is_idempotent(blob_store: BlobStore) -> None:
    blob_store.delete(KEY)  # nothing there yet
    blob_store.put(KEY, reader(b"content"), content_type="text/plain")

    blob_store.delete(KEY)
    blob_store.delete(KEY)

    assert not blob_store.exists(KEY)
    with pytest.raises(BlobMissing):
        blob_store.read(KEY)


def test_exists_only_for_stored_keys(blob_store: BlobStore) -> None:
    blob_store.put(KEY, reader(b"content"), content_type="text/plain")

    assert blob_store.exists(KEY)
    assert not blob_store.exists("org1/other")
    assert not blob_store.exists("org2/blob1")


def test_stored_before_lists_keys_by_age(blob_store: BlobStore) -> None:
    blob_store.put(KEY, reader(b"one"), content_type="text/plain")
    blob_store.put("org2/blob2", reader(b"two"), content_type="text/plain")
    now = datetime.now(UTC)

    assert sorted(blob_store.stored_before(now + timedelta(minutes=1))) == [KEY, "org2/blob2"]
    assert list(blob_store.stored_before(now - timedelta(minutes=1))) == []


# -- all or nothing ------------------------------------------------------------------------

FAIL_POINTS = [
    pytest.param(0, id="at-once"),
    pytest.param(100, id="small"),
    pytest.param(MULTIPART_THRESHOLD + 4 * MIB, id="after-multipart-started"),
]


@pytest.mark.parametrize("fail_after", FAIL_POINTS)
def test_a_failing_reader_stores_nothing_and_its_error_propagates(
    blob_store: BlobStore, fail_after: int
) -> None:
    source = reader(random_bytes(BIG), fail_after=fail_after)

    with pytest.raises(Broke) as raised:
        blob_store.put(KEY, source, content_type="application/octet-stream")

    assert raised.value is source.error
    assert not blob_store.exists(KEY)
    with pytest.raises(BlobMissing):
        blob_store.read(KEY)


@pytest.mark.parametrize("fail_after", FAIL_POINTS)
def test_a_failing_reader_leaves_the_previous_content(
    blob_store: BlobStore, fail_after: int
) -> None:
    blob_store.put(KEY, reader(b"previous"), content_type="text/plain")

    with pytest.raises(Broke):
        blob_store.put(KEY, reader(random_bytes(BIG), fail_after=fail_after), content_type="a/b")

    assert read_all(blob_store, KEY) == b"previous"


# -- keys ----------------------------------------------------------------------------------

BAD_KEYS = ["../etc/passwd", "a/b/c", "A/B", "org1", "org1/", "/blob1", "org1/../x", "a b/c", ""]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_are_not_two_ids_are_refused(blob_store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        blob_store.put(key, reader(b"x"), content_type="text/plain")
    with pytest.raises(ValueError, match="not a blob key"):
        blob_store.read(key)
    with pytest.raises(ValueError, match="not a blob key"):
        blob_store.delete(key)
    with pytest.raises(ValueError, match="not a blob key"):
        blob_store.exists(key)


def test_a_refused_put_reads_nothing(blob_store: BlobStore) -> None:
    source = reader(b"content")

    with pytest.raises(ValueError, match="not a blob key"):
        blob_store.put("../etc/passwd", source, content_type="text/plain")

    assert source.handed_out == 0


# -- signed URLs ---------------------------------------------------------------------------

FILENAME = 'Relevé «final» "v2"; été.pdf'


def test_local_store_has_no_signed_url(local_store: BlobStore) -> None:
    local_store.put(KEY, reader(b"%PDF"), content_type="application/pdf")

    url = local_store.signed_url(
        KEY, filename=FILENAME, content_type="application/pdf", expires_in=timedelta(minutes=1)
    )

    assert url is None


def test_a_signed_url_fetches_without_credentials(s3_store: S3BlobStore) -> None:
    data = random_bytes(70_000)
    s3_store.put(KEY, reader(data), content_type="application/octet-stream")

    url = s3_store.signed_url(
        KEY, filename=FILENAME, content_type="application/pdf", expires_in=timedelta(minutes=5)
    )

    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:  # no Authorization header
        body = response.read()
        headers = response.headers
    assert body == data
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == content_disposition(FILENAME)


@pytest.mark.parametrize(
    "expires_in",
    [timedelta(minutes=5, seconds=1), timedelta(hours=1), timedelta(0), timedelta(seconds=-1)],
    ids=["5min1s", "1h", "zero", "negative"],
)
def test_a_signed_url_is_short_lived(s3_store: S3BlobStore, expires_in: timedelta) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        s3_store.signed_url(
            KEY, filename="a.pdf", content_type="application/pdf", expires_in=expires_in
        )


def test_a_signed_url_needs_a_valid_key(s3_store: S3BlobStore) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        s3_store.signed_url(
            "../x",
            filename="a.pdf",
            content_type="application/pdf",
            expires_in=timedelta(minutes=1),
        )


# -- S3 specifics --------------------------------------------------------------------------


def test_a_failed_s3_upload_aborts_its_multipart_upload(s3_store: S3BlobStore) -> None:
    calls: list[str] = []
    part_stored = threading.Event()
    events = s3_store.client.meta.events
    events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    events.register("after-call.s3.UploadPart", lambda **_: part_stored.set())
    source = reader(
        random_bytes(BIG),
        fail_after=2 * MULTIPART_THRESHOLD,
        before_failing=lambda: part_stored.wait(timeout=10),  # let a part land first
    )

    with pytest.raises(Broke) as raised:
        s3_store.put(KEY, source, content_type="application/octet-stream")

    assert raised.value is source.error
    assert "UploadPart" in calls
    assert calls[-1] == "AbortMultipartUpload"
    pending = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert pending.get("Uploads", []) == []
    assert not s3_store.exists(KEY)


@pytest.mark.parametrize("size", [100, BIG], ids=["single-put", "multipart"])
def test_s3_objects_get_content_type_and_server_side_encryption(
    s3_endpoint: str, tmp_path: Path, size: int
) -> None:
    store = S3BlobStore.from_settings(
        s3_test_settings(s3_endpoint, tmp_path, server_side_encryption="AES256")
    )
    store.ensure_bucket()
    try:
        store.put(KEY, reader(random_bytes(size)), content_type="application/pdf")

        head = store.client.head_object(Bucket=store.bucket, Key=KEY)
    finally:
        store.client.close()
    assert head["ContentLength"] == size
    assert head["ContentType"] == "application/pdf"
    assert head["ServerSideEncryption"] == "AES256"


def test_ensure_bucket_is_idempotent(s3_store: S3BlobStore) -> None:
    s3_store.ensure_bucket()

    s3_store.put(KEY, reader(b"content"), content_type="text/plain")
    assert read_all(s3_store, KEY) == b"content"
