"""app upkeep: when each device last answered a ManagedApplicationList (the scheduled
reconcile asks again past the interval), and the delivery of the managed app configuration
(the Settings command sent, its answer's ErrorChain, its attempts for the backoff)

Revision ID: 0019_app_upkeep
Revises: 0018_app_state
Create Date: 2026-12-02 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_app_upkeep"
down_revision = "0018_app_state"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "app_device_lists",
        sa.Column("device_id", sa.String(length=128), primary_key=True),
        sa.Column(
            "listed_at",
            _TS,
            nullable=False,
            comment="the device's last acknowledged ManagedApplicationList",
        ),
    )
    op.create_index("ix_app_device_lists_listed_at", "app_device_lists", ["listed_at"])
    with op.batch_alter_table("app_device_states") as batch:
        batch.add_column(
            sa.Column(
                "configuration_command_uuid",
                sa.String(length=64),
                nullable=True,
                comment="the Settings ApplicationConfiguration command last sent",
            )
        )
        batch.add_column(
            sa.Column(
                "configuration_error",
                sa.Text(),
                nullable=True,
                comment="JSON: the ErrorChain of a refused Settings command",
            )
        )
        batch.add_column(
            sa.Column(
                "configuration_attempts",
                sa.Integer(),
                server_default=sa.text("0"),
                nullable=False,
                comment="Settings commands sent since the configuration last applied",
            )
        )
        batch.add_column(
            sa.Column(
                "configuration_updated_at",
                _TS,
                nullable=True,
                comment="when the Settings command was last sent or answered",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("app_device_states") as batch:
        batch.drop_column("configuration_updated_at")
        batch.drop_column("configuration_attempts")
        batch.drop_column("configuration_error")
        batch.drop_column("configuration_command_uuid")
    op.drop_index("ix_app_device_lists_listed_at", table_name="app_device_lists")
    op.drop_table("app_device_lists")
