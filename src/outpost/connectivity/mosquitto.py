"""Mosquitto's view of device credentials: its password-file hash of a device secret."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Final

#: Mosquitto 2's ``$7$`` password hash: PBKDF2-HMAC-SHA512 over a 12-byte salt.
BROKER_HASH_ITERATIONS: Final = 101


def broker_hash(secret: str) -> str:
    """The password-file entry (after ``user:``) that lets ``secret`` log in to Mosquitto."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, BROKER_HASH_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${BROKER_HASH_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"
