"""Random bearer secrets: shown once, stored as a SHA-256 digest.

Tokens carry 256 random bits, so a fast hash is the right at-rest protection
(a slow password hash only defends low-entropy secrets).
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "opt"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(kind: str = TOKEN_PREFIX) -> tuple[str, str]:
    """Return ``(token, visible_prefix)``: ``<kind>_<8 chars>_<43 chars>`` (``opt`` for API
    tokens, ``opd`` for device credentials)."""
    visible = f"{kind}_{secrets.token_hex(4)}"
    return f"{visible}_{secrets.token_urlsafe(32)}", visible


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)
