"""TOTP (RFC 6238) codes, the shared secret's encryption at rest, and recovery codes.

Pure functions, no database: :mod:`outpost.identity.factors` does the I/O.

- Codes are the authenticator-app default: HMAC-SHA-1, 6 digits, 30-second steps.
  :func:`verify` accepts the step before and after the current one (clock drift) and
  refuses any step at or before ``last_step``, so a code works once.
- The secret must be readable to check codes, so it is encrypted, not hashed:
  AES-256-GCM under a key derived from the app's secret key with HKDF-SHA256
  (info ``b"outpost totp"``), stored as ``v1:`` + urlsafe base64 of nonce + ciphertext.
  The owner's user id is bound as associated data, so a ciphertext copied onto another
  user's row does not decrypt. Changing the app's secret key makes every stored secret
  unreadable: users then sign in with a recovery code and enrol again.
- Recovery codes are 12 characters from an alphabet without look-alikes
  (``abcd-efgh-jkmn``), stored as SHA-256 of the normalised code (lower case, no dashes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outpost.identity.secrets import digest

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, the size RFC 4226 recommends for HMAC-SHA-1

RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no i, l, o, 0, 1
RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4

_ENCRYPTION_VERSION = "v1:"
_HKDF_INFO = b"outpost totp"
_NONCE_BYTES = 12


# --- codes --------------------------------------------------------------------------------


def new_secret() -> str:
    """160 random bits, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key_bytes(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP with HMAC-SHA-1 and dynamic truncation."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def step_at(at: datetime) -> int:
    """The 30-second time step ``at`` falls in (T0 = the Unix epoch)."""
    return int(at.timestamp()) // STEP_SECONDS


def code_at(secret: str, at: datetime, digits: int = DIGITS) -> str:
    """The code an authenticator shows at ``at`` for the base32 ``secret``."""
    return hotp(_key_bytes(secret), step_at(at), digits)


def verify(secret: str, code: str, at: datetime, last_step: int) -> int | None:
    """The step ``code`` matches, within one step of ``at``, and later than ``last_step``.

    None when it matches no such step: wrong, too old or too new, or already used.
    """
    given = "".join(code.split())
    if len(given) != DIGITS or not (given.isascii() and given.isdigit()):
        return None
    key = _key_bytes(secret)
    current = step_at(at)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # compare every candidate, so the timing does not tell which step matched
        if hmac.compare_digest(hotp(key, step), given) and step > last_step and matched is None:
            matched = step
    return matched


def provisioning_uri(secret: str, account: str, issuer: str = "Outpost") -> str:
    """The ``otpauth://totp/`` URI an authenticator app reads from the QR code."""
    label = quote(f"{issuer}:{account}", safe="@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


# --- the secret at rest -------------------------------------------------------------------


def _encryption_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("An app secret key is needed to encrypt TOTP secrets.")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return hkdf.derive(secret_key.encode())


def encrypt_secret(secret: str, secret_key: str, *, owner: str) -> str:
    """``v1:`` + urlsafe base64 of a random nonce and the AES-GCM ciphertext of ``secret``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(_encryption_key(secret_key)).encrypt(nonce, secret.encode(), owner.encode())
    return _ENCRYPTION_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(stored: str, secret_key: str, *, owner: str) -> str:
    """The secret sealed by :func:`encrypt_secret`; ValueError if it was altered, belongs to
    another owner, or was sealed under another key."""
    if not stored.startswith(_ENCRYPTION_VERSION):
        raise ValueError("Unknown TOTP secret format.")
    try:
        raw = base64.urlsafe_b64decode(stored[len(_ENCRYPTION_VERSION) :])
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        plain = AESGCM(_encryption_key(secret_key)).decrypt(nonce, sealed, owner.encode())
    except (InvalidTag, ValueError) as exc:
        raise ValueError("The TOTP secret cannot be decrypted.") from exc
    return plain.decode()


# --- recovery codes -----------------------------------------------------------------------


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """``count`` codes like ``abcd-efgh-jkmn`` (about 59 random bits each)."""
    return [
        "-".join(
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
            for _ in range(RECOVERY_GROUPS)
        )
        for _ in range(count)
    ]


def normalise_recovery_code(code: str) -> str:
    """Lower case, without dashes or spaces: ``ABCD EFGH-jkmn`` → ``abcdefghjkmn``."""
    return "".join(char for char in code.lower() if char not in "- \t")


def recovery_code_hash(code: str) -> str:
    return digest(normalise_recovery_code(code))


def looks_like_recovery_code(code: str) -> bool:
    normal = normalise_recovery_code(code)
    return len(normal) == RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH and all(
        char in RECOVERY_ALPHABET for char in normal
    )
