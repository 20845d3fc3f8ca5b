"""apps: the app catalog, assignments, per-device app state, Apps and Books assets/licenses/events

Revision ID: 0017_apps
Revises: 0001
Create Date: 2026-12-01 20:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_apps"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False, comment="API and CLI handle"),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="app_store, ios_inhouse, macos_pkg",
        ),
        sa.Column("bundle_id", sa.String(length=255), nullable=False),
        sa.Column(
            "adam_id",
            sa.String(length=32),
            nullable=True,
            comment="iTunes Store ID (App Store apps)",
        ),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column(
            "file_name",
            sa.String(length=255),
            nullable=True,
            comment="stored file, under MDM_HOME/apps",
        ),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "download_url", sa.Text(), nullable=True, comment="admin-given CDN URL of the file"
        ),
        sa.Column(
            "manifest_url",
            sa.Text(),
            nullable=True,
            comment="admin-given manifest URL (nothing stored)",
        ),
        sa.Column(
            "manifest",
            sa.Text(),
            nullable=True,
            comment="JSON: the manifest built from the stored file",
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "app_assignments",
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column(
            "target", sa.String(length=160), nullable=False, comment="all, or tag:<device tag>"
        ),
        sa.Column(
            "behaviour", sa.String(length=16), nullable=False, comment="required or available"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "target"),
    )
    op.create_table(
        "app_device_states",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, installing, installed, failed, needs_license, removing",
        ),
        sa.Column("command_uuid", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True, comment="JSON: the device's ErrorChain"),
        sa.Column(
            "attempts",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="installs sent",
        ),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "app_id"),
    )
    op.create_index("ix_app_device_states_command_uuid", "app_device_states", ["command_uuid"])
    op.create_table(
        "vpp_assets",
        sa.Column("adam_id", sa.String(length=32), nullable=False),
        sa.Column("pricing_param", sa.String(length=16), nullable=False, comment="STDQ or PLUS"),
        sa.Column("product_type", sa.String(length=16), nullable=True),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("assigned_count", sa.Integer(), nullable=False),
        sa.Column("available_count", sa.Integer(), nullable=False),
        sa.Column("retired_count", sa.Integer(), nullable=False),
        sa.Column("device_assignable", sa.Boolean(), nullable=False),
        sa.Column("revocable", sa.Boolean(), nullable=False),
        sa.Column("platforms", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column("synced_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("adam_id", "pricing_param"),
    )
    op.create_table(
        "vpp_licenses",
        sa.Column("adam_id", sa.String(length=32), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("pricing_param", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="assigning, assigned, revoking, failed",
        ),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("adam_id", "serial_number"),
    )
    op.create_index("ix_vpp_licenses_event_id", "vpp_licenses", ["event_id"])
    op.create_table(
        "vpp_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column(
            "event_type", sa.String(length=16), nullable=False, comment="ASSOCIATE or DISASSOCIATE"
        ),
        sa.Column("adam_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="PENDING, COMPLETE or FAILED"
        ),
        sa.Column("num_requested", sa.Integer(), nullable=True),
        sa.Column("num_completed", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Text(), nullable=True, comment="JSON: Apple's failures"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("vpp_events")
    op.drop_index("ix_vpp_licenses_event_id", table_name="vpp_licenses")
    op.drop_table("vpp_licenses")
    op.drop_table("vpp_assets")
    op.drop_index("ix_app_device_states_command_uuid", table_name="app_device_states")
    op.drop_table("app_device_states")
    op.drop_table("app_assignments")
    op.drop_table("apps")
