"""File names and folders: normalized or refused, never turned into paths."""

from __future__ import annotations

import unicodedata

import pytest

from outpost.files import names


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("../etc/passwd", "file.name_invalid"),
        ("a/b.pdf", "file.name_invalid"),
        ("a\\b.pdf", "file.name_invalid"),
        ("..", "file.name_invalid"),
        (".", "file.name_invalid"),
        ("", "file.name_invalid"),
        ("   ", "file.name_invalid"),
        ("bad\x00name", "file.name_invalid"),
        ("bell\x07.txt", "file.name_invalid"),
        ("rtl\u202etxt.exe", "file.name_invalid"),
        (" padded.pdf", "file.name_invalid"),
        ("é" * 128 + ".pdf", "file.name_invalid"),
    ],
)
def test_bad_names_are_refused(given: str, code: str) -> None:
    _, problems = names.normalize_name(given)
    assert [p.code for p in problems] == [code]


def test_names_are_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Schéma électrique.pdf")
    normalized, problems = names.normalize_name(decomposed)
    assert problems == []
    assert normalized == unicodedata.normalize("NFC", decomposed)
    assert normalized != decomposed


@pytest.mark.parametrize(
    ("given", "expected"),
    [("/", "/"), ("", "/"), ("docs", "/docs"), ("/docs/", "/docs"), ("//a//b/", "/a/b")],
)
def test_folders_are_normalized(given: str, expected: str) -> None:
    assert names.normalize_folder(given) == (expected, [])


@pytest.mark.parametrize("given", ["/a/../b", "/a/./b", "/a\x00/b", "/" + "/x" * 17])
def test_bad_folders_are_refused(given: str) -> None:
    _, problems = names.normalize_folder(given)
    assert [p.code for p in problems] == ["file.folder_invalid"]


def test_ancestors() -> None:
    assert names.ancestors("/") == ["/"]
    assert names.ancestors("/a/b") == ["/", "/a", "/a/b"]


def test_content_disposition_keeps_the_exact_name_and_an_ascii_fallback() -> None:
    header = names.content_disposition('Schéma "v2".pdf')
    assert header.startswith('attachment; filename="Schema _v2_.pdf"; ')
    assert "filename*=UTF-8''Sch%C3%A9ma%20%22v2%22.pdf" in header
    assert names.content_disposition("x.png", inline=True).startswith("inline;")
