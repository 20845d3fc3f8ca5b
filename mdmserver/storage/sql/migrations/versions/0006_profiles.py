"""profiles: managed configuration profiles, assignments, per-enrollment state, signatures

Revision ID: 0006_profiles
Revises: 0001
Create Date: 2026-11-27 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_profiles"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "name",
            sa.String(length=128),
            nullable=False,
            comment="the handle used by the API and CLI",
        ),
        sa.Column(
            "identifier",
            sa.String(length=255),
            nullable=False,
            comment="top-level PayloadIdentifier",
        ),
        sa.Column(
            "payload_uuid",
            sa.String(length=36),
            nullable=False,
            comment="changes with every revision",
        ),
        sa.Column(
            "digest", sa.String(length=64), nullable=False, comment="SHA-256 of content, hex"
        ),
        sa.Column("content", sa.LargeBinary(), nullable=False, comment="built XML, unsigned"),
        sa.Column(
            "source", sa.String(length=64), nullable=False, comment="template name, or upload"
        ),
        sa.Column(
            "payload_types", sa.Text(), nullable=False, comment="comma-separated PayloadTypes"
        ),
        sa.Column("encrypt", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("per_device", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, column in (
        ("uq_profiles_live_name", "name"),
        ("uq_profiles_live_identifier", "identifier"),
    ):
        op.create_index(
            name, "profiles", [column], unique=True, postgresql_where=_LIVE, sqlite_where=_LIVE
        )
    op.create_table(
        "profile_assignments",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column(
            "target", sa.String(length=160), nullable=False, comment="all, or tag:<device tag>"
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"]),
        sa.PrimaryKeyConstraint("profile_id", "target"),
    )
    op.create_table(
        "profile_states",
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column(
            "installed_uuid",
            sa.String(length=64),
            nullable=True,
            comment="what the device has, as last known",
        ),
        sa.Column(
            "action",
            sa.String(length=16),
            nullable=True,
            comment="install or remove: the last command sent",
        ),
        sa.Column(
            "sent_uuid",
            sa.String(length=64),
            nullable=True,
            comment="PayloadUUID the last install carried",
        ),
        sa.Column("command_uuid", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, installed, failed, removed",
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="JSON: the device's ErrorChain"),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id", "identifier"),
    )
    op.create_index(
        op.f("ix_profile_states_command_uuid"), "profile_states", ["command_uuid"], unique=False
    )
    op.create_table(
        "profile_signatures",
        sa.Column(
            "digest", sa.String(length=64), nullable=False, comment="SHA-256 of what was signed"
        ),
        sa.Column("signed", sa.LargeBinary(), nullable=False, comment="DER CMS SignedData"),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "device_identity_certs",
        sa.Column(
            "fingerprint", sa.String(length=64), nullable=False, comment="SHA-256 of the DER, hex"
        ),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.create_index(
        op.f("ix_device_identity_certs_device_id"),
        "device_identity_certs",
        ["device_id"],
        unique=False,
    )
    op.create_table(
        "fde_escrow",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column(
            "device_key",
            sa.String(length=128),
            nullable=True,
            comment="FDE_PersonalRecoveryKeyDeviceKey (serial)",
        ),
        sa.Column(
            "envelope",
            sa.LargeBinary(),
            nullable=False,
            comment="CMS to the escrow certificate",
        ),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_fde_escrow_device_id"), "fde_escrow", ["device_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fde_escrow_device_id"), table_name="fde_escrow")
    op.drop_table("fde_escrow")
    op.drop_index(op.f("ix_device_identity_certs_device_id"), table_name="device_identity_certs")
    op.drop_table("device_identity_certs")
    op.drop_table("profile_signatures")
    op.drop_index(op.f("ix_profile_states_command_uuid"), table_name="profile_states")
    op.drop_table("profile_states")
    op.drop_table("profile_assignments")
    for name in ("uq_profiles_live_identifier", "uq_profiles_live_name"):
        op.drop_index(name, table_name="profiles", postgresql_where=_LIVE, sqlite_where=_LIVE)
    op.drop_table("profiles")
