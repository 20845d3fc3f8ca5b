"""admin: API keys and the audit log

Revision ID: 0003_admin
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_admin"
down_revision = "0001"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "scope",
            sa.String(length=32),
            nullable=False,
            comment="admin (this API), trust, metrics",
        ),
        sa.Column(
            "key_hash", sa.String(length=64), nullable=False, comment="SHA-256 of the key, hex"
        ),
        sa.Column(
            "prefix",
            sa.String(length=16),
            nullable=False,
            comment="first characters, to recognise it",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_hash"),
    )
    op.create_index(
        "uq_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "actor", sa.String(length=128), nullable=False, comment="API key name, or cli:<user>"
        ),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column(
            "targets",
            sa.Text(),
            nullable=True,
            comment="JSON list of device ids (truncated for large sends)",
        ),
        sa.Column("target_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "detail", sa.Text(), nullable=True, comment="JSON: command UUID, request type, ..."
        ),
        sa.Column(
            "outcome",
            sa.String(length=512),
            nullable=False,
            comment="ok, or the refusal with its status",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(
        "uq_api_keys_active_name",
        table_name="api_keys",
        postgresql_where=_ACTIVE,
        sqlite_where=_ACTIVE,
    )
    op.drop_table("api_keys")
