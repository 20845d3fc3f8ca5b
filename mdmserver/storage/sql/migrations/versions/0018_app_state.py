"""app state: managed app configuration and management flags per assignment, the delivery
channel (command or ddm) and installed version per device, the DDM app list in inventory

Revision ID: 0018_app_state
Revises: 0017_apps, 0005_inventory
Create Date: 2026-12-01 23:00:00.000000

Alters apps tables (0017_apps) and the inventory table (0005_inventory), so it follows both.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_app_state"
down_revision = ("0017_apps", "0005_inventory")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_assignments") as batch:
        batch.add_column(
            sa.Column(
                "management_flags",
                sa.Integer(),
                nullable=True,
                comment="InstallApplication ManagementFlags (0: none); null: the default, 1",
            )
        )
        batch.add_column(
            sa.Column(
                "configuration",
                sa.Text(),
                nullable=True,
                comment="JSON: the managed app configuration sent as Configuration",
            )
        )
    with op.batch_alter_table("app_device_states") as batch:
        batch.add_column(
            sa.Column(
                "channel",
                sa.String(length=8),
                server_default=sa.text("'command'"),
                nullable=False,
                comment="command (InstallApplication...) or ddm (app.managed declaration)",
            )
        )
        batch.add_column(
            sa.Column(
                "installed_version",
                sa.String(length=64),
                nullable=True,
                comment="as the device last reported it",
            )
        )
        batch.add_column(
            sa.Column(
                "configuration_sha256",
                sa.String(length=64),
                nullable=True,
                comment="the managed app configuration last sent to the device",
            )
        )
    with op.batch_alter_table("inventory") as batch:
        batch.add_column(
            sa.Column(
                "ddm_apps", sa.Text(), nullable=True, comment="JSON list: app.managed.list status"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("inventory") as batch:
        batch.drop_column("ddm_apps")
    with op.batch_alter_table("app_device_states") as batch:
        batch.drop_column("configuration_sha256")
        batch.drop_column("installed_version")
        batch.drop_column("channel")
    with op.batch_alter_table("app_assignments") as batch:
        batch.drop_column("configuration")
        batch.drop_column("management_flags")
