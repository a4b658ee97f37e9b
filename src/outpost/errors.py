"""Domain errors: services raise these, the web layer maps each class to a status once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outpost.validation import Violation


class OutpostError(Exception):
    """Base of every error a service raises on purpose."""

    title = "Error"
    type_slug = "error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class BadRequest(OutpostError):
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, violations: Sequence[Violation] = ()) -> None:
        super().__init__(detail)
        self.violations = list(violations)


class Unauthenticated(OutpostError):
    title = "Authentication required"
    type_slug = "unauthenticated"


class Forbidden(OutpostError):
    title = "Forbidden"
    type_slug = "forbidden"

    def __init__(self, detail: str, violations: Sequence[Violation] = ()) -> None:
        super().__init__(detail)
        self.violations = list(violations)


class MfaRequired(OutpostError):
    """The action needs a second factor confirmed in this web session within the last
    15 minutes. API tokens can never satisfy it: such actions are done in the UI.

    ``enrolled`` says whether the user has an authenticator to confirm with (else they
    must set one up first, because their organization requires it).
    """

    title = "Fresh MFA required"
    type_slug = "mfa-required"

    def __init__(self, detail: str = "", *, enrolled: bool = True) -> None:
        super().__init__(detail)
        self.enrolled = enrolled


class NotFound(OutpostError):
    title = "Not found"
    type_slug = "not-found"


class Conflict(OutpostError):
    title = "Conflict"
    type_slug = "conflict"

    def __init__(self, detail: str, violations: Sequence[Violation] = ()) -> None:
        super().__init__(detail)
        self.violations = list(violations)


class PreconditionRequired(OutpostError):
    title = "Precondition required"
    type_slug = "precondition-required"


class PreconditionFailed(OutpostError):
    """The client's revision is stale; ``current`` is the object as it is now."""

    title = "Precondition failed"
    type_slug = "precondition-failed"

    def __init__(self, detail: str, current: dict[str, Any], revision: int) -> None:
        super().__init__(detail)
        self.current = current
        self.revision = revision


def require_revision(current: int, expected: int, snapshot: dict[str, Any], label: str) -> None:
    """Refuse a write made against a revision that is no longer the current one."""
    if current != expected:
        raise PreconditionFailed(
            f"{label} has changed since you read it (now revision {current}).",
            current=snapshot,
            revision=current,
        )


class RuleViolation(OutpostError):
    """The proposed state breaks one or more rules; every violation is listed."""

    title = "Validation failed"
    type_slug = "validation-failed"

    def __init__(self, violations: Sequence[Violation], detail: str = "") -> None:
        self.violations = list(violations)
        count = len(self.violations)
        super().__init__(detail or f"The change breaks {count} rule{'s' if count != 1 else ''}.")


class PayloadTooLarge(OutpostError):
    title = "Payload too large"
    type_slug = "payload-too-large"


class QuotaExceeded(PayloadTooLarge):
    title = "Storage quota exceeded"
    type_slug = "quota-exceeded"


class UnsupportedMediaType(OutpostError):
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class TooManyRequests(OutpostError):
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(OutpostError):
    """A backing store is overloaded or unreachable: nothing was done, retry later."""

    title = "Service unavailable"
    type_slug = "service-unavailable"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
