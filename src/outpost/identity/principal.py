"""Who is acting, and the request they act in. Passed explicitly to every service."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (directly, or through one of their API tokens) in one organization."""

    org_id: str
    user_id: str
    role: str
    label: str
    kind: str = "user"  # "user", "token", "system", "cli" (a command run on the server) or "link"
    token_id: str | None = None
    #: A token's own narrowing of the role's permissions (None: no narrowing).
    token_permissions: frozenset[str] | None = None

    @property
    def actor_id(self) -> str:
        return self.token_id or self.user_id


@dataclass(frozen=True, slots=True)
class Actor:
    principal: Principal
    meta: RequestMeta = field(default_factory=RequestMeta)

    @property
    def org_id(self) -> str:
        return self.principal.org_id
