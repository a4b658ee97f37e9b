"""file pole

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 21:48:28.501083
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outpost.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "file_usage",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("used_bytes >= 0", name="ck_file_usage_positive"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("org_id"),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("folder", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version_count", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "owner_type IN ('organization', 'site', 'asset')", name="ck_files_owner_type"
        ),
        sa.CheckConstraint("revision >= 1", name="ck_files_revision_positive"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_org_deleted", ["org_id", "deleted_at"], unique=False)
        batch_op.create_index(
            "uq_files_live_name",
            ["org_id", "owner_type", "owner_id", "folder", "name"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "file_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("download_count", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("revoked_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("download_count >= 0", name="ck_file_links_count_positive"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("file_links", schema=None) as batch_op:
        batch_op.create_index("ix_file_links_file", ["file_id"], unique=False)

    op.create_table(
        "file_shares",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=True),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("folder", sa.String(length=1024), nullable=True),
        sa.Column("grantee_type", sa.String(length=8), nullable=False),
        sa.Column("grantee_id", sa.String(length=40), nullable=False),
        sa.Column("access", sa.String(length=8), nullable=False),
        sa.Column("expires_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("revoked_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("access IN ('read', 'write')", name="ck_file_shares_access"),
        sa.CheckConstraint("grantee_type IN ('user', 'role')", name="ck_file_shares_grantee"),
        sa.CheckConstraint(
            "(file_id IS NOT NULL) <> (folder IS NOT NULL)", name="ck_file_shares_one_target"
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("file_shares", schema=None) as batch_op:
        batch_op.create_index("ix_file_shares_file", ["file_id"], unique=False)
        batch_op.create_index(
            "ix_file_shares_org_grantee", ["org_id", "grantee_type", "grantee_id"], unique=False
        )

    op.create_table(
        "file_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("blob_key", sa.String(length=140), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("blob_key"),
        sa.UniqueConstraint("file_id", "number", name="uq_file_versions_number"),
    )
    with op.batch_alter_table("file_versions", schema=None) as batch_op:
        batch_op.create_index("ix_file_versions_org", ["org_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("file_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_file_versions_org")

    op.drop_table("file_versions")
    with op.batch_alter_table("file_shares", schema=None) as batch_op:
        batch_op.drop_index("ix_file_shares_org_grantee")
        batch_op.drop_index("ix_file_shares_file")

    op.drop_table("file_shares")
    with op.batch_alter_table("file_links", schema=None) as batch_op:
        batch_op.drop_index("ix_file_links_file")

    op.drop_table("file_links")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_files_live_name",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_files_org_deleted")

    op.drop_table("files")
    op.drop_table("file_usage")
