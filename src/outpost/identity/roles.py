"""Permissions and the built-in roles that bundle them.

A permission is a verb on a resource. A role is a named set of permissions; the
built-in ones are below, an organization may define its own (``custom_roles``).
Who holds a role, and on which scope, is in ``access.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Permission(StrEnum):
    SITE_READ = "site.read"
    SITE_WRITE = "site.write"
    ASSET_READ = "asset.read"
    ASSET_WRITE = "asset.write"
    CONFIG_WRITE = "config.write"
    TELEMETRY_READ = "telemetry.read"
    TELEMETRY_WRITE = "telemetry.write"
    FILES_READ = "files.read"
    FILES_WRITE = "files.write"
    FILES_SHARE = "files.share"
    REMOTE_CONNECT = "remote.connect"
    AUDIT_READ = "audit.read"
    GRANT_CREATE = "grant.create"
    TOKEN_CREATE = "token.create"
    TOKEN_MANAGE = "token.manage"
    MEMBER_MANAGE = "member.manage"


#: Permissions that mean something only on the whole organization: a holding of them
#: on a site or an asset subtree counts for nothing. (``token.create`` held on a site
#: lets its holder make tokens, which carry only what they hold.)
ORGANIZATION_ONLY = frozenset(
    {Permission.AUDIT_READ, Permission.TOKEN_MANAGE, Permission.MEMBER_MANAGE}
)

#: What a temporary grant never carries: its holder cannot delegate from it.
NOT_DELEGABLE = frozenset({Permission.GRANT_CREATE, Permission.TOKEN_CREATE})

#: The role of a member with no standing access: they act only through grants.
NO_ROLE = "none"

_VIEW = frozenset(
    {
        Permission.SITE_READ,
        Permission.ASSET_READ,
        Permission.TELEMETRY_READ,
        Permission.FILES_READ,
        Permission.AUDIT_READ,
        Permission.TOKEN_CREATE,
    }
)
_TECHNICIAN = _VIEW | {
    Permission.CONFIG_WRITE,
    Permission.TELEMETRY_WRITE,
    Permission.FILES_WRITE,
    Permission.REMOTE_CONNECT,
}
_OPERATE = _TECHNICIAN | {
    Permission.SITE_WRITE,
    Permission.ASSET_WRITE,
    Permission.FILES_SHARE,
    Permission.GRANT_CREATE,
}

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "viewer": _VIEW,
    "technician": _TECHNICIAN,
    "operator": _OPERATE,
    "admin": frozenset(Permission),
    NO_ROLE: frozenset(),
}

ROLE_DESCRIPTIONS = {
    "viewer": "Reads the fleet, its telemetry, files and audit trail.",
    "technician": "A viewer who also changes device configuration, uploads files, "
    "writes telemetry and connects to devices.",
    "operator": "A technician who also creates, moves and deletes sites and assets, "
    "shares files and grants access within their scope.",
    "admin": "Everything, including members, roles and every token.",
    NO_ROLE: "No standing access: only what grants give.",
}


def is_builtin(name: str) -> bool:
    return name in BUILTIN_ROLES


_KNOWN = frozenset(p.value for p in Permission)


def known_permissions(values: Iterable[str]) -> frozenset[Permission]:
    """The known permissions among ``values`` (a stored list may outlive a removed one)."""
    return frozenset(Permission(v) for v in values if v in _KNOWN)
