"""TOTP codes (RFC 6238 vectors), the drift window, replay, the secret's encryption at rest,
and recovery codes: pure functions, a frozen time passed as ``at``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from outpost.identity import totp
from outpost.identity.secrets import digest

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
KEY = "app-secret-key"


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# RFC 6238 appendix B, SHA-1: (T, 8-digit code)
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("seconds", "code"), RFC_VECTORS)
def test_rfc6238_vectors_8_digits(seconds, code):
    assert totp.code_at(RFC_SECRET, at(seconds), digits=8) == code


@pytest.mark.parametrize(("seconds", "code"), RFC_VECTORS)
def test_rfc6238_vectors_6_digit_truncation(seconds, code):
    assert totp.code_at(RFC_SECRET, at(seconds)) == code[-6:]
    assert totp.verify(RFC_SECRET, code[-6:], at(seconds), 0) == seconds // 30


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-61, False), (-31, False), (-30, True), (0, True), (29, True), (30, True), (60, False)],
)
def test_one_step_of_drift_either_way(offset, accepted):
    # the code of step 40 (t = 1200..1229), checked from a clock ``offset`` seconds away
    code = totp.code_at(RFC_SECRET, at(1200))
    found = totp.verify(RFC_SECRET, code, at(1200 + offset), 0)
    assert (found == 40) is accepted
    if not accepted:
        assert found is None


def test_a_code_works_once_and_older_steps_are_refused():
    now = at(1_700_000_000)
    code = totp.code_at(RFC_SECRET, now)
    step = totp.verify(RFC_SECRET, code, now, 0)
    assert step == totp.step_at(now)
    assert totp.verify(RFC_SECRET, code, now, step) is None  # replay
    previous = totp.code_at(RFC_SECRET, now - timedelta(seconds=30))
    assert totp.verify(RFC_SECRET, previous, now, step) is None  # an older step
    following = totp.code_at(RFC_SECRET, now + timedelta(seconds=30))
    assert totp.verify(RFC_SECRET, following, now, step) == step + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "٢٨٧٠٨٢", "287 08x"])
def test_malformed_codes_are_refused(code):
    assert totp.verify(RFC_SECRET, code, at(59), 0) is None


def test_spaces_in_a_code_are_ignored():
    assert totp.verify(RFC_SECRET, "287 082", at(59), 0) == 1


def test_new_secret_is_160_bits_of_base32():
    secret = totp.new_secret()
    assert len(secret) == 32 and len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()


def test_provisioning_uri():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", "ada@example.test")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Outpost%3Aada@example.test"
    query = parse_qs(parts.query)
    assert query == {
        "secret": ["JBSWY3DPEHPK3PXP"],
        "issuer": ["Outpost"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_encryption_round_trip():
    secret = totp.new_secret()
    sealed = totp.encrypt_secret(secret, KEY, owner="usr_1")
    assert sealed.startswith("v1:") and secret not in sealed
    assert totp.decrypt_secret(sealed, KEY, owner="usr_1") == secret
    assert totp.encrypt_secret(secret, KEY, owner="usr_1") != sealed  # a fresh nonce each time


def _flip(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[index] ^= 1
    return "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("nonce altered", lambda s: (_flip(s, 0), KEY, "usr_1")),
        ("ciphertext altered", lambda s: (_flip(s, 15), KEY, "usr_1")),
        ("tag altered", lambda s: (_flip(s, -1), KEY, "usr_1")),
        ("truncated", lambda s: (s[:-8], KEY, "usr_1")),
        ("another user's row", lambda s: (s, KEY, "usr_2")),
        ("another app key", lambda s: (s, "another-key", "usr_1")),
        ("unknown version", lambda s: ("v2:" + s[3:], KEY, "usr_1")),
        ("not base64", lambda s: ("v1:***", KEY, "usr_1")),
    ],
)
def test_tampering_is_refused(name, change):
    sealed = totp.encrypt_secret(totp.new_secret(), KEY, owner="usr_1")
    stored, key, owner = change(sealed)
    with pytest.raises(ValueError):
        totp.decrypt_secret(stored, key, owner=owner)


def test_recovery_codes_shape():
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(totp.RECOVERY_ALPHABET)
        assert totp.looks_like_recovery_code(code)
    assert not set("il1o0") & set(totp.RECOVERY_ALPHABET)


@pytest.mark.parametrize(
    "typed", ["abcd-efgh-jkmn", "ABCD-EFGH-JKMN", "abcdefghjkmn", " abcd efgh jkmn "]
)
def test_recovery_codes_compare_after_normalising(typed):
    assert totp.recovery_code_hash(typed) == digest("abcdefghjkmn")
    assert totp.looks_like_recovery_code(typed)


@pytest.mark.parametrize("typed", ["123456", "abcd-efgh", "abcd-efgh-jkm1", "abcd-efgh-jkmn-pq"])
def test_other_input_is_not_a_recovery_code(typed):
    assert not totp.looks_like_recovery_code(typed)
