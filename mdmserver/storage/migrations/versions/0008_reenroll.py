"""re-enrollment rule: an admin's one-time allowance for a device

``devices.reenroll_allowed_until``: until when an admin lets one new identity take over the
device's active enrollment (``mdmserver devices allow-reenroll``); the re-enrollment that uses
it clears it.

Revision ID: 0008_reenroll
Revises: 0001
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_reenroll"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("reenroll_allowed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reenroll_allowed_until")
