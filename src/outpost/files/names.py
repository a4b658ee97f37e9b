"""File names and folder paths: normalized, or refused with a reason.

A name is Unicode NFC, at most 255 UTF-8 bytes, without path separators, control
characters or the names ``.`` and ``..``. A folder is ``/`` or ``/a/b`` made of such
names. Neither ever becomes a path on disk or a storage key.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from outpost.validation import Violation

NAME_MAX_BYTES = 255
FOLDER_MAX_DEPTH = 16
ROOT = "/"


def name_problem(name: str) -> str | None:
    """Why ``name`` (already NFC) cannot be a file or folder name, or None."""
    if not name.strip():
        return "is empty"
    if name in {".", ".."}:
        return "cannot be . or .."
    if "/" in name or "\\" in name:
        return "cannot contain / or \\"
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for char in name):
        return "cannot contain control or invisible formatting characters"
    if name != name.strip():
        return "cannot start or end with spaces"
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        return f"is longer than {NAME_MAX_BYTES} bytes"
    return None


def normalize_name(name: str, path: str = "name") -> tuple[str, list[Violation]]:
    normalized = unicodedata.normalize("NFC", name)
    problem = name_problem(normalized)
    if problem is None:
        return normalized, []
    return normalized, [Violation("file.name_invalid", f"The file name {problem}.", path)]


def normalize_folder(folder: str, path: str = "folder") -> tuple[str, list[Violation]]:
    """``"a/b/"``, ``"/a//b"`` and ``"/a/b"`` are the same folder, ``/a/b``."""
    parts = [p for p in unicodedata.normalize("NFC", folder).split("/") if p != ""]
    if len(parts) > FOLDER_MAX_DEPTH:
        message = f"A folder can be at most {FOLDER_MAX_DEPTH} levels deep."
        return ROOT, [Violation("file.folder_invalid", message, path)]
    for part in parts:
        problem = name_problem(part)
        if problem is not None:
            message = f"The folder name {part!r} {problem}."
            return ROOT, [Violation("file.folder_invalid", message, path)]
    return ROOT + "/".join(parts), []


def ancestors(folder: str) -> list[str]:
    """``folder`` and every folder above it: ``/a/b`` → ``["/", "/a", "/a/b"]``."""
    parts = [part for part in folder.split("/") if part]
    return [ROOT] + ["/" + "/".join(parts[: index + 1]) for index in range(len(parts))]


def ascii_fallback(name: str) -> str:
    """A plain-ASCII stand-in for ``Content-Disposition``'s ``filename=``."""
    decomposed = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in decomposed).strip()
    return cleaned or "download"


def content_disposition(name: str, *, inline: bool = False) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact UTF-8 ``filename*``."""
    kind = "inline" if inline else "attachment"
    fallback = ascii_fallback(name).replace('"', "")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
