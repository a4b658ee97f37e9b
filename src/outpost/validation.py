"""The violation record shared by every rule set and the problem+json renderer."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule.

    ``code`` is stable (clients branch on it), ``path`` is a JSON-pointer-like
    dotted path inside the object the violation is attached to (``config.channel``),
    ``object_id`` is that object, and ``related`` lists the ids of the other
    objects that take part in the conflict.
    """

    code: str
    message: str
    path: str = ""
    object_id: str | None = None
    related: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "object_id": self.object_id,
            "related": list(self.related),
        }


def field_violations(error: ValidationError, object_id: str | None = None) -> list[Violation]:
    """One violation per pydantic error: code ``field.<error type>``, the field's dotted path."""
    return [
        Violation(
            f"field.{item['type']}",
            item["msg"],
            ".".join(str(part) for part in item["loc"]),
            object_id,
        )
        for item in error.errors()
    ]
