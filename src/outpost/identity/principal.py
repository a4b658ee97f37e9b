"""Who is acting, what they hold, and the request they act in. Passed explicitly to every
service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a resource sits in an organization: on the organization itself, on a site,
    or on an asset (``path``: the asset's ancestors from the top of its tree, then itself)."""

    site_id: str | None = None
    path: tuple[str, ...] = ()


ORGANIZATION = Scope()


@dataclass(frozen=True, slots=True)
class Area:
    """A part of an organization: all of it (no site, no asset), one site, or the subtree
    under one asset."""

    site_id: str | None = None
    asset_id: str | None = None

    @property
    def whole(self) -> bool:
        return self.site_id is None and self.asset_id is None

    def covers(self, scope: Scope) -> bool:
        if self.asset_id is not None:
            return self.asset_id in scope.path
        if self.site_id is not None:
            return self.site_id == scope.site_id
        return True


EVERYWHERE = Area()


@dataclass(frozen=True, slots=True)
class Holding:
    """Permissions held on an area until ``until`` (None: standing), from a membership
    (``grant_id`` None) or a grant."""

    permissions: frozenset[str]
    area: Area = EVERYWHERE
    until: datetime | None = None
    grant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (directly, or through one of their API tokens) in one organization.

    ``holdings`` is what the user holds right now, read afresh on every request: their
    membership's role on the whole organization and every live grant. None means exactly
    the built-in ``role`` on the whole organization (the system actor, hand-made principals).
    """

    org_id: str
    user_id: str
    role: str
    label: str
    kind: str = "user"  # "user", "token", "system", "cli" (a command run on the server) or "link"
    token_id: str | None = None
    #: A token's own narrowing of the role's permissions (None: no narrowing).
    token_permissions: frozenset[str] | None = None
    #: A token's own narrowing to a site or an asset subtree.
    token_area: Area = EVERYWHERE
    holdings: tuple[Holding, ...] | None = None

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
