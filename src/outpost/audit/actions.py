"""Every audited action, as dotted ``domain.subject.verb`` strings."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ORG_CREATED = "identity.organization.created"
    USER_CREATED = "identity.user.created"
    MEMBERSHIP_CREATED = "identity.membership.created"
    MEMBERSHIP_UPDATED = "identity.membership.updated"
    TOKEN_CREATED = "identity.token.created"
    TOKEN_REVOKED = "identity.token.revoked"
    SESSION_STARTED = "identity.session.started"
    SESSION_ENDED = "identity.session.ended"
    SITE_CREATED = "inventory.site.created"
    SITE_UPDATED = "inventory.site.updated"
    SITE_DELETED = "inventory.site.deleted"
    ASSET_CREATED = "inventory.asset.created"
    ASSET_UPDATED = "inventory.asset.updated"
    ASSET_MOVED = "inventory.asset.moved"
    ASSET_DELETED = "inventory.asset.deleted"
    CHANGESET_APPLIED = "inventory.changeset.applied"
    FILE_UPLOADED = "files.file.uploaded"
    FILE_VERSION_ADDED = "files.file.version_added"
    FILE_UPDATED = "files.file.updated"
    FILE_DOWNLOADED = "files.file.downloaded"
    FILE_DELETED = "files.file.deleted"
    FILE_RESTORED = "files.file.restored"
    FILE_PURGED = "files.file.purged"
    SHARE_CREATED = "files.share.created"
    SHARE_REVOKED = "files.share.revoked"
    LINK_CREATED = "files.link.created"
    LINK_REVOKED = "files.link.revoked"
    LINK_USED = "files.link.used"
