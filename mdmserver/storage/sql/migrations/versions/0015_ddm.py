"""ddm: declarations, assignments, channels, the status channel, declaration states, assets

Revision ID: 0015_ddm
Revises: 0001
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_ddm"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ddm_declarations",
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column(
            "class",
            sa.String(length=16),
            nullable=False,
            comment="activation, asset, configuration, ...",
        ),
        sa.Column("payload", sa.Text(), nullable=False, comment="JSON, as validated"),
        sa.Column(
            "server_token",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of the content, hex",
        ),
        sa.Column(
            "managed_by",
            sa.String(length=16),
            nullable=False,
            comment="admin, or server (built in)",
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("identifier"),
    )
    op.create_table(
        "ddm_assignments",
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column(
            "target", sa.String(length=160), nullable=False, comment="all, or tag:<device tag>"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("identifier", "target"),
    )
    op.create_table(
        "ddm_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="always 1"),
        sa.Column(
            "revision", sa.BigInteger(), nullable=False, comment="bumped by every change above"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ddm_channels",
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column(
            "declarations_token",
            sa.String(length=64),
            nullable=True,
            comment="the token last sent or fetched",
        ),
        sa.Column(
            "enabled_at", _TS, nullable=True, comment="first DeclarativeManagement command queued"
        ),
        sa.Column("synced_at", _TS, nullable=True, comment="last declaration-items fetch"),
        sa.Column("status_at", _TS, nullable=True, comment="last status report"),
        sa.PrimaryKeyConstraint("enrollment_id"),
    )
    op.create_index(op.f("ix_ddm_channels_device_id"), "ddm_channels", ["device_id"])
    op.create_table(
        "ddm_status_items",
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column(
            "item", sa.String(length=128), nullable=False, comment="e.g. passcode.is-compliant"
        ),
        sa.Column("value", sa.Text(), nullable=False, comment="JSON"),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", "item"),
    )
    op.create_table(
        "ddm_status_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("item", sa.String(length=128), nullable=False),
        sa.Column(
            "value", sa.Text(), nullable=True, comment="JSON; NULL when the item was removed"
        ),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ddm_status_history_enrollment", "ddm_status_history", ["enrollment_id", "id"]
    )
    op.create_table(
        "ddm_status_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("full_report", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, comment="the report's JSON, as received"),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_ddm_status_reports_enrollment", "ddm_status_reports", ["enrollment_id", "id"]
    )
    op.create_table(
        "ddm_declaration_states",
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("class", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("valid", sa.String(length=16), nullable=True),
        sa.Column("server_token", sa.String(length=64), nullable=True),
        sa.Column(
            "reasons", sa.Text(), nullable=True, comment="JSON list of the device's status reasons"
        ),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", "identifier"),
    )
    op.create_table(
        "ddm_assets",
        sa.Column(
            "id", sa.String(length=32), nullable=False, comment="random; part of the asset's URL"
        ),
        sa.Column(
            "identifier", sa.String(length=255), nullable=False, comment="the asset declaration"
        ),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ddm_assets_identifier"), "ddm_assets", ["identifier"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ddm_assets_identifier"), table_name="ddm_assets")
    op.drop_table("ddm_assets")
    op.drop_table("ddm_declaration_states")
    op.drop_index("ix_ddm_status_reports_enrollment", table_name="ddm_status_reports")
    op.drop_table("ddm_status_reports")
    op.drop_index("ix_ddm_status_history_enrollment", table_name="ddm_status_history")
    op.drop_table("ddm_status_history")
    op.drop_table("ddm_status_items")
    op.drop_index(op.f("ix_ddm_channels_device_id"), table_name="ddm_channels")
    op.drop_table("ddm_channels")
    op.drop_table("ddm_revision")
    op.drop_table("ddm_assignments")
    op.drop_table("ddm_declarations")
