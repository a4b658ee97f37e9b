"""File contents on the local disk, under ``var/files`` by default.

A blob is written to a temporary file in the same directory, flushed to disk and
renamed into place, so a reader sees the whole content or nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from outpost.files.storage import CHUNK_BYTES, KEY_PATTERN, BlobMissing, Readable, check_key


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: Readable, *, content_type: str) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := data.read(CHUNK_BYTES):
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return size

    def read(self, key: str, *, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise BlobMissing(f"No stored content for {key}.") from exc
        return _chunks(handle, start, stop)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stored_before(self, moment: datetime) -> Iterator[str]:
        if not self.root.is_dir():
            return
        cutoff = moment.timestamp()
        for org in sorted(self.root.iterdir()):
            if not org.is_dir():
                continue
            for blob in sorted(org.iterdir()):
                key = f"{org.name}/{blob.name}"
                if KEY_PATTERN.fullmatch(key) and blob.stat().st_mtime < cutoff:
                    yield key

    def signed_url(
        self, key: str, *, filename: str, content_type: str, expires_in: timedelta
    ) -> str | None:
        return None


def _chunks(handle: BinaryIO, start: int, stop: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if stop is None else stop - start
        while remaining is None or remaining > 0:
            size = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
            chunk = handle.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
