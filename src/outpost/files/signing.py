"""Short-lived signed download URLs for the local blob store.

S3 presigns its own URLs; on the local backend the app signs ``(version id, file
name)`` with the secret key and serves the bytes itself. A signature older than
``SIGNED_URL_LIFETIME`` is refused.
"""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from outpost.errors import NotFound

SIGNED_URL_LIFETIME = timedelta(minutes=5)
_SALT = "outpost.files.download"


def sign_download(secret_key: str, version_id: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=_SALT).dumps(version_id)


def read_download(secret_key: str, token: str) -> str:
    """The version id a token was signed for; a bad or expired signature is a 404."""
    try:
        value = URLSafeTimedSerializer(secret_key, salt=_SALT).loads(
            token, max_age=int(SIGNED_URL_LIFETIME.total_seconds())
        )
    except BadSignature as exc:
        raise NotFound("This download link has expired or is not valid.") from exc
    if not isinstance(value, str):
        raise NotFound("This download link is not valid.")
    return value
