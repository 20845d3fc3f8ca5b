"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 23:10:03.924285
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("request_type", sa.String(length=128), nullable=False),
        sa.Column(
            "plist", sa.LargeBinary(), nullable=False, comment="the command plist exactly as sent"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_table(
        "devices",
        sa.Column(
            "id",
            sa.String(length=128),
            nullable=False,
            comment="UDID, or EnrollmentID (User Enrollment)",
        ),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("user_enrollment", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("product_name", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=32), nullable=True),
        sa.Column("build_version", sa.String(length=32), nullable=True),
        sa.Column("device_name", sa.String(length=256), nullable=True),
        sa.Column("imei", sa.String(length=32), nullable=True),
        sa.Column("meid", sa.String(length=32), nullable=True),
        sa.Column("topic", sa.String(length=256), nullable=True),
        sa.Column("enrolled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("bootstrap_token", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_devices_serial_number"), "devices", ["serial_number"], unique=False)
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("enrollment_id", sa.String(length=300), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_events_device_id"), "events", ["device_id"], unique=False)
    op.create_table(
        "cert_bindings",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column(
            "fingerprint", sa.String(length=64), nullable=False, comment="SHA-256 of the DER, hex"
        ),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("device_id", "fingerprint"),
        sa.UniqueConstraint("fingerprint", name="uq_cert_bindings_fingerprint"),
    )
    op.create_table(
        "enrollments",
        sa.Column(
            "id", sa.String(length=300), nullable=False, comment="device id, or device id:user id"
        ),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=True),
        sa.Column("user_short_name", sa.String(length=256), nullable=True),
        sa.Column("user_long_name", sa.String(length=256), nullable=True),
        sa.Column("topic", sa.String(length=256), nullable=True),
        sa.Column("push_token", sa.String(length=512), nullable=True, comment="hex"),
        sa.Column("push_magic", sa.String(length=128), nullable=True),
        sa.Column("unlock_token", sa.LargeBinary(), nullable=True),
        sa.Column("token_stale", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "awaiting_configuration", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="pending, active or checked_out"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_enrollments_device_id"), "enrollments", ["device_id"], unique=False)
    op.create_table(
        "command_queue",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
            comment="also the age order",
        ),
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("command_uuid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notnow_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "result",
            sa.LargeBinary(),
            nullable=True,
            comment="the device's result plist, as received",
        ),
        sa.ForeignKeyConstraint(
            ["command_uuid"],
            ["commands.uuid"],
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id", "command_uuid", name="uq_command_queue_target"),
    )
    op.create_index("ix_command_queue_command", "command_queue", ["command_uuid"], unique=False)
    op.create_index(
        "ix_command_queue_pending",
        "command_queue",
        ["enrollment_id", "priority", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'sent', 'notnow')"),
        sqlite_where=sa.text("status IN ('queued', 'sent', 'notnow')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_command_queue_pending",
        table_name="command_queue",
        postgresql_where=sa.text("status IN ('queued', 'sent', 'notnow')"),
        sqlite_where=sa.text("status IN ('queued', 'sent', 'notnow')"),
    )
    op.drop_index("ix_command_queue_command", table_name="command_queue")
    op.drop_table("command_queue")
    op.drop_index(op.f("ix_enrollments_device_id"), table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_table("cert_bindings")
    op.drop_index(op.f("ix_events_device_id"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_devices_serial_number"), table_name="devices")
    op.drop_table("devices")
    op.drop_table("commands")
