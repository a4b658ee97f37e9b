"""The password policy after NIST SP 800-63B: length, common passwords, context, patterns."""

from __future__ import annotations

import pytest

from outpost.identity.passwords import password_problems


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "Ünïcödé pässphrase", "x" * 11 + "yz", "grid-capacity-kW-500"],
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problems(password, "ops@acme.test") == []


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12"),
        ("x" * 257, "at most 256"),
        ("Password1234", "most common"),
        ("1qaz2wsx3edc", "most common"),
        ("LeaveMeAlone", "most common"),
        ("jean.dupont-2026!", "email"),
        ("aaaaaaaaaaaa", "repeated"),
        ("passwordpassword", "repeated"),
        ("123456789012", "run"),
        ("210987654321", "run"),
        ("abcdefghijklm", "run"),
    ],
)
def test_weak_passwords_are_refused(password: str, fragment: str) -> None:
    problems = password_problems(password, "jean.dupont@acme.test")
    assert any(fragment in problem for problem in problems), problems


def test_no_composition_rules() -> None:
    """All lower case, no digit, no symbol: fine when long and uncommon."""
    assert password_problems("quiet meadow under the ridge", "ops@acme.test") == []
