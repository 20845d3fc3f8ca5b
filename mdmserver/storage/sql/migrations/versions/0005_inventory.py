"""inventory: normalised facts, raw answers, history; compliance state, history, remediations
and the API-set policy

Revision ID: 0005_inventory
Revises: 0001
Create Date: 2026-11-27 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_inventory"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _device_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["device_id"], ["devices.id"])


def upgrade() -> None:
    op.create_table(
        "inventory",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=True),
        sa.Column("os_version", sa.String(length=32), nullable=True),
        sa.Column("build_version", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("product_name", sa.String(length=64), nullable=True),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("device_name", sa.String(length=256), nullable=True),
        sa.Column("supervised", sa.Boolean(), nullable=True),
        sa.Column("activation_lock", sa.Boolean(), nullable=True),
        sa.Column("storage_capacity_gb", sa.Float(), nullable=True),
        sa.Column("storage_available_gb", sa.Float(), nullable=True),
        sa.Column("battery_level", sa.Float(), nullable=True, comment="0..1"),
        sa.Column("passcode_present", sa.Boolean(), nullable=True),
        sa.Column("passcode_compliant", sa.Boolean(), nullable=True),
        sa.Column("hardware_encryption_caps", sa.Integer(), nullable=True),
        sa.Column("data_protection", sa.Boolean(), nullable=True),
        sa.Column("filevault", sa.Boolean(), nullable=True),
        sa.Column("sip", sa.Boolean(), nullable=True),
        sa.Column("firewall", sa.Boolean(), nullable=True),
        sa.Column("installed_apps", sa.Text(), nullable=True, comment="JSON list"),
        sa.Column("managed_apps", sa.Text(), nullable=True, comment="JSON list"),
        sa.Column("profiles", sa.Text(), nullable=True, comment="JSON list"),
        sa.Column("certificates", sa.Text(), nullable=True, comment="JSON list"),
        sa.Column("requested_at", _TS, nullable=True, comment="inventory commands last queued"),
        sa.Column("updated_at", _TS, nullable=True, comment="last answer stored"),
        _device_fk(),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index("ix_inventory_requested_at", "inventory", ["requested_at"])
    op.create_table(
        "inventory_answers",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("request_type", sa.String(length=64), nullable=False),
        sa.Column("command_uuid", sa.String(length=64), nullable=False),
        sa.Column(
            "body", sa.LargeBinary(), nullable=False, comment="the result plist, as received"
        ),
        sa.Column("received_at", _TS, nullable=False),
        _device_fk(),
        sa.PrimaryKeyConstraint("device_id", "request_type"),
    )
    op.create_table(
        "inventory_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True, comment="JSON; lists: the items removed"),
        sa.Column("new_value", sa.Text(), nullable=True, comment="JSON; lists: the items added"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inventory_history_device_id", "inventory_history", ["device_id"])
    op.create_table(
        "compliance_state",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="compliant, noncompliant or unknown",
        ),
        sa.Column("reasons", sa.Text(), nullable=False, comment="JSON list of what is not passing"),
        sa.Column(
            "results", sa.Text(), nullable=False, comment="JSON list of every rule's outcome"
        ),
        sa.Column("evaluated_at", _TS, nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
        sa.Column("noncompliant_since", _TS, nullable=True),
        _device_fk(),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "compliance_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("previous_state", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_compliance_history_device_id", "compliance_history", ["device_id"])
    op.create_table(
        "remediations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="install_profile, refresh, device_lock",
        ),
        sa.Column(
            "detail", sa.String(length=256), nullable=False, comment="profile identifier, ..."
        ),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="requested, queued or resolved"
        ),
        sa.Column("command_uuid", sa.String(length=64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_remediations_device_id", "remediations", ["device_id"])
    op.create_table(
        "compliance_policy",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False, comment="always 1"),
        sa.Column("body", sa.Text(), nullable=False, comment="JSON policy"),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("compliance_policy")
    op.drop_index("ix_remediations_device_id", table_name="remediations")
    op.drop_table("remediations")
    op.drop_index("ix_compliance_history_device_id", table_name="compliance_history")
    op.drop_table("compliance_history")
    op.drop_table("compliance_state")
    op.drop_index("ix_inventory_history_device_id", table_name="inventory_history")
    op.drop_table("inventory_history")
    op.drop_table("inventory_answers")
    op.drop_index("ix_inventory_requested_at", table_name="inventory")
    op.drop_table("inventory")
