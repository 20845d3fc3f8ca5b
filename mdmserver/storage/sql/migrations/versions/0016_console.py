"""console users and their login failures (issue #16)

Revision ID: 0016_console
Revises: 0005_inventory
Create Date: 2026-12-01 20:00:00.000000

Requires 0005_inventory (the compliance tables it indexes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_console"
down_revision = "0005_inventory"  # it indexes the compliance tables
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False, comment="admin, helpdesk or auditor"),
        sa.Column("password_hash", sa.String(256), nullable=False, comment="argon2id"),
        sa.Column(
            "must_change_password", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "session_epoch",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="bumped on password change or disable: older sessions end",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("name", name="uq_console_users_name"),
    )
    op.create_table(
        "console_login_failures",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_console_login_failures_address_at", "console_login_failures", ["address", "at"]
    )
    op.create_index("ix_console_login_failures_name_at", "console_login_failures", ["name", "at"])
    # The dashboard and the device list count and sort by these.
    op.create_index("ix_devices_last_seen_at", "devices", ["last_seen_at"])
    op.create_index("ix_compliance_state_state", "compliance_state", ["state"])
    op.create_index("ix_compliance_history_at", "compliance_history", ["at"])


def downgrade() -> None:
    op.drop_index("ix_compliance_history_at", table_name="compliance_history")
    op.drop_index("ix_compliance_state_state", table_name="compliance_state")
    op.drop_index("ix_devices_last_seen_at", table_name="devices")
    op.drop_table("console_login_failures")
    op.drop_table("console_users")
