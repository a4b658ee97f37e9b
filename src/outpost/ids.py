"""Opaque, time-ordered string ids: a type prefix and 26 Crockford base32 characters."""

from __future__ import annotations

import base64
import os
import time

_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789abcdefghjkmnpqrstvwxyz"  # ascending in ASCII, so ids sort by time
_TO_CROCKFORD = bytes.maketrans(_RFC4648, _CROCKFORD)


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 48 bits of milliseconds + 80 random bits; sorts by creation time."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode()}"
