"""grants and scoped access

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 00:21:54.441173
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import outpost.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.String(length=40), nullable=True),
        sa.Column("asset_id", sa.String(length=40), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index("ix_access_requests_org_status", ["org_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_requests_user_id"), ["user_id"], unique=False)

    op.create_table(
        "custom_roles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "name", name="uq_custom_roles_org_name"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.String(length=40), nullable=True),
        sa.Column("asset_id", sa.String(length=40), nullable=True),
        sa.Column("starts_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("granted_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=40), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.Column("expiry_recorded_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index("ix_grants_org_expires", ["org_id", "expires_at"], unique=False)
        batch_op.create_index("ix_grants_org_site", ["org_id", "site_id"], unique=False)
        batch_op.create_index("ix_grants_org_user", ["org_id", "user_id"], unique=False)

    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.String(length=40), nullable=True),
        sa.Column("asset_id", sa.String(length=40), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", outpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", outpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("asset_id", sa.String(length=40), nullable=True))

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_grant_hours", sa.Integer(), server_default="168", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("max_grant_hours")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("asset_id")
        batch_op.drop_column("site_id")

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_org_id"))

    op.drop_table("invitations")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_org_user")
        batch_op.drop_index("ix_grants_org_site")
        batch_op.drop_index("ix_grants_org_expires")

    op.drop_table("grants")
    op.drop_table("custom_roles")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_requests_user_id"))
        batch_op.drop_index("ix_access_requests_org_status")

    op.drop_table("access_requests")
