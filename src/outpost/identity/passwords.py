"""argon2id password hashing, and the password policy."""

from __future__ import annotations

from functools import cache
from itertools import pairwise

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
_DUMMY_HASH = _hasher.hash("outpost-timing-equalizer")

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: an unknown user costs one argon2 verification too."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- the password policy (NIST SP 800-63B, 5.1.1.2) -------------------------------------

MAX_PASSWORD_LENGTH = 256


@cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, as bundled with zxcvbn (lower case)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, email: str = "") -> list[str]:
    """Why ``password`` is refused, or nothing: length, commonness, context, repetition.

    No composition rules (no "one digit, one symbol"): SP 800-63B advises against them.
    """
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"A password can have at most {MAX_PASSWORD_LENGTH} characters.")
    folded = password.casefold()
    if folded in _common_passwords():
        problems.append("This password is among the most common ones; choose another.")
    local = email.partition("@")[0].casefold()
    if email and (email.casefold() in folded or (local in folded and 2 * len(local) > len(folded))):
        problems.append("A password must not be made of your email address.")
    if _repeats(folded) or _is_sequence(folded):
        problems.append("A password must not be a repeated pattern or a run like 123456789012.")
    return problems


def _repeats(text: str) -> bool:
    """``text`` is one shorter unit repeated (``aaaa``, ``abcabc``, ``passwordpassword``)."""
    return len(text) > 1 and text in (text + text)[1:-1]


def _step(a: str, b: str) -> int:
    """+1 when ``b`` follows ``a``, -1 when it precedes it (digits wrap: 9 → 0 → 1)."""
    if a.isdigit() and b.isdigit():
        return {1: 1, 9: -1}.get((int(b) - int(a)) % 10, 0)
    return ord(b) - ord(a)


def _is_sequence(text: str) -> bool:
    """Every character follows the previous one (``abcdefghijkl``, ``210987654321``)."""
    steps = {_step(a, b) for a, b in pairwise(text)}
    return steps in ({1}, {-1})
