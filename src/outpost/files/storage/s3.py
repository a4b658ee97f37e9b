"""File contents in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), through boto3.

An upload is streamed with ``upload_fileobj``: a small one in a single ``PutObject``,
a large one as a multipart upload of ``PART_BYTES`` parts. S3 makes an object visible
only when its upload completes, so a reader sees the whole content or nothing; if
reading the source raises, the transfer manager aborts the multipart upload and the
exception reaches the caller unchanged.

The bucket is not created by :meth:`S3BlobStore.from_settings`: in production it is
provisioned by the operator, and the app's credentials need not allow
``CreateBucket``. Tests and development call :meth:`S3BlobStore.ensure_bucket`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from outpost.files.names import content_disposition
from outpost.files.storage import CHUNK_BYTES, KEY_PATTERN, BlobMissing, Readable, check_key
from outpost.settings import Settings

#: A boto3 S3 client (boto3 ships no type hints).
S3Client: TypeAlias = Any

MIB = 1024 * 1024
#: Uploads at least this large go multipart; smaller ones are one ``PutObject``.
MULTIPART_THRESHOLD = 8 * MIB
#: Size of one multipart part: 10,000 parts (the S3 limit) hold 80 GiB.
PART_BYTES = 8 * MIB
#: Parts uploaded at once by one upload, and parts held in memory by it.
UPLOAD_CONCURRENCY = 4
#: A signed URL is a bearer credential: keep it short-lived.
SIGNED_URL_MAX = timedelta(minutes=5)

#: Error codes for a missing object (``HeadObject`` has no body: only ``"404"``). A missing
#: bucket is a misconfiguration, not a missing blob, and is not among them.
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, *, server_side_encryption: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.server_side_encryption = server_side_encryption
        self._transfer = _transfer_config()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            config=Config(
                # Parts carry a CRC32 checksum S3 verifies, as over TLS, where boto3 never
                # signs payloads; SHA-256-signing every part on a plain-http endpoint
                # would cost a fifth of an upload's CPU.
                s3={"addressing_style": "path", "payload_signing_enabled": False},
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=32,
            ),
            **_credentials(settings),
        )
        return cls(
            client,
            settings.s3_bucket,
            server_side_encryption=settings.s3_server_side_encryption,
        )

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (tests and development; see the module doc)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _NO_BUCKET_CODES:
                raise
        region = self.client.meta.region_name
        arguments: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**arguments)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise

    def put(self, key: str, data: Readable, *, content_type: str) -> int:
        """Stream ``data`` to ``key``; its ``read`` runs on a transfer-manager thread.

        So ``data`` must not depend on thread-locals or context variables (Flask's
        ``request`` proxy); an exception it raises is re-raised here unchanged.
        """
        check_key(key)
        source = _FullReads(data)
        self.client.upload_fileobj(
            source,
            self.bucket,
            key,
            ExtraArgs=self._put_arguments(content_type),
            Config=self._transfer,
        )
        return source.size

    def _put_arguments(self, content_type: str) -> dict[str, str]:
        arguments = {"ContentType": content_type}
        if self.server_side_encryption:
            arguments["ServerSideEncryption"] = self.server_side_encryption
        return arguments

    def read(self, key: str, *, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        check_key(key)
        if start < 0:
            raise ValueError(f"start must not be negative: {start}")
        if stop is not None and stop <= start:
            # No valid Range header asks for nothing; still refuse a missing key.
            if not self.exists(key):
                raise BlobMissing(f"No stored content for {key}.")
            return iter(())
        arguments = {"Bucket": self.bucket, "Key": key}
        if start > 0 or stop is not None:
            arguments["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            response = self.client.get_object(**arguments)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise BlobMissing(f"No stored content for {key}.") from exc
            if code == "InvalidRange":  # start at or past the end: nothing to read
                return iter(())
            raise
        return _BodyChunks(response["Body"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    def stored_before(self, moment: datetime) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            for item in page.get("Contents", []):
                if KEY_PATTERN.fullmatch(item["Key"]) and item["LastModified"] < moment:
                    yield str(item["Key"])

    def signed_url(
        self, key: str, *, filename: str, content_type: str, expires_in: timedelta
    ) -> str | None:
        check_key(key)
        if not timedelta(0) < expires_in <= SIGNED_URL_MAX:
            raise ValueError(f"expires_in must be positive and at most {SIGNED_URL_MAX}")
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=max(1, int(expires_in.total_seconds())),
        )
        return url


def _credentials(settings: Settings) -> dict[str, str]:
    """Explicit keys when both are set; none lets boto3 use its default chain (env, IAM role)."""
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if bool(key_id) != bool(secret):
        raise ValueError(
            "Set both OUTPOST_S3_ACCESS_KEY_ID and OUTPOST_S3_SECRET_ACCESS_KEY, or neither."
        )
    if not key_id:
        return {}
    return {"aws_access_key_id": key_id, "aws_secret_access_key": secret}


def _transfer_config() -> Any:
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=PART_BYTES,
        max_concurrency=UPLOAD_CONCURRENCY,
        use_threads=True,
        # The classic manager: its abort-on-failure and error propagation are what we rely on.
        preferred_transfer_client="classic",
    )
    # A non-seekable source is buffered part by part; bound that memory per upload.
    config.max_in_memory_upload_chunks = UPLOAD_CONCURRENCY
    return config


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _FullReads:
    """``data`` with every ``read(n)`` filled to ``n`` bytes unless the end comes first.

    The transfer manager takes one short read for the end of the stream: it would send
    a too-small part, or buffer the rest of the upload in memory as one ``PutObject``.
    Only ``read`` is exposed, so the manager never tries to seek. Counts the bytes.
    """

    def __init__(self, data: Readable) -> None:
        self._data = data
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            chunk = self._data.read(CHUNK_BYTES if size < 0 else size - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self.size += got
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _BodyChunks:
    """The chunks of one ``GetObject`` body; closed at the end, on error, or by ``close()``.

    A class rather than a generator: WSGI servers call ``close()`` on a response they
    stop sending, and a generator never started would not close the connection.
    """

    def __init__(self, body: Any) -> None:
        self._body = body

    def __iter__(self) -> _BodyChunks:
        return self

    def __next__(self) -> bytes:
        try:
            chunk: bytes = self._body.read(CHUNK_BYTES)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        self._body.close()
