"""Streams around file contents: hashing and metering uploads, verifying downloads.

Nothing here holds more than one chunk in memory, whatever the file size.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

from outpost.errors import OutpostError, PayloadTooLarge
from outpost.files.sniff import SNIFF_BYTES
from outpost.files.storage import Readable

log = logging.getLogger(__name__)


class ContentCorrupted(OutpostError):
    """Stored bytes no longer match the SHA-256 recorded when they were uploaded."""

    title = "Stored content is corrupted"
    type_slug = "content-corrupted"


class UploadReader:
    """Reads an upload once: counts, hashes and caps it, and keeps its first bytes.

    ``head`` (up to ``SNIFF_BYTES``) is read on construction so the content type can be
    decided before anything is stored. Reading past ``limit`` bytes raises
    ``too_large``: the store aborts and nothing is kept.
    """

    def __init__(self, source: Readable, *, limit: int, too_large: PayloadTooLarge) -> None:
        self._source = source
        self._limit = limit
        self._too_large = too_large
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = self._fill(SNIFF_BYTES)
        self._pending = self.head

    def _fill(self, wanted: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < wanted:
            chunk = self._source.read(wanted - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        data = b"".join(parts)
        self._count(data)
        return data

    def _count(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._limit:
            raise self._too_large
        self._hash.update(data)

    def read(self, size: int = -1, /) -> bytes:
        if self._pending:
            data = self._pending if size < 0 else self._pending[:size]
            self._pending = self._pending[len(data) :]
            return data
        data = self._source.read(size)
        self._count(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def verified(chunks: Iterator[bytes], sha256: str, key: str) -> Iterator[bytes]:
    """Yield ``chunks``, holding the last one back until the whole content hashed to ``sha256``.

    The response has started by then, so a mismatch cuts the connection short of its
    ``Content-Length``: the client sees a failed download, never corrupted bytes as whole.
    """
    digest = hashlib.sha256()
    held: bytes | None = None
    for chunk in chunks:
        digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if digest.hexdigest() != sha256:
        log.error("blob %s does not match its recorded SHA-256", key)
        raise ContentCorrupted(f"The stored content of {key} does not match its SHA-256.")
    if held is not None:
        yield held
