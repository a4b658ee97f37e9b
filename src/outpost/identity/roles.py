"""Permissions and the built-in roles that bundle them."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    SITE_READ = "site.read"
    SITE_WRITE = "site.write"
    ASSET_READ = "asset.read"
    ASSET_WRITE = "asset.write"
    CONFIG_WRITE = "config.write"
    AUDIT_READ = "audit.read"
    TOKEN_CREATE = "token.create"
    TOKEN_MANAGE = "token.manage"
    MEMBER_MANAGE = "member.manage"
    FILES_READ = "files.read"
    FILES_WRITE = "files.write"
    FILES_SHARE = "files.share"


_READ = frozenset(
    {
        Permission.SITE_READ,
        Permission.ASSET_READ,
        Permission.AUDIT_READ,
        Permission.TOKEN_CREATE,
        Permission.FILES_READ,
    }
)
_OPERATE = _READ | {
    Permission.SITE_WRITE,
    Permission.ASSET_WRITE,
    Permission.CONFIG_WRITE,
    Permission.FILES_WRITE,
    Permission.FILES_SHARE,
}

ROLES: dict[str, frozenset[Permission]] = {
    "viewer": _READ,
    "operator": _OPERATE,
    "admin": frozenset(Permission),
}


def is_role(name: str) -> bool:
    return name in ROLES
