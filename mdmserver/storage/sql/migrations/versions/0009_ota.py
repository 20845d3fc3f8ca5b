"""over-the-air enrollment: tokens that offer or require it, devices whose UDID was attested

Revision ID: 0009_ota
Revises: 0002
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_ota"
# From 0002, not 0001: it alters enroll_tokens, which 0002 creates (a branch from 0001 may
# run before 0002 on a fresh database; a depends_on would hide 0002 from the applied heads).
down_revision = "0002"
branch_labels = None
depends_on = None

_FALSE = sa.text("false")


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column(
                "udid_attested",
                sa.Boolean(),
                nullable=False,
                server_default=_FALSE,
                comment="the identity was issued for this UDID, attested by Apple "
                "(migration 0009_ota)",
            )
        )
    with op.batch_alter_table("enroll_tokens") as batch:
        batch.add_column(sa.Column("ota", sa.Boolean(), nullable=False, server_default=_FALSE))
        batch.add_column(
            sa.Column("require_ota", sa.Boolean(), nullable=False, server_default=_FALSE)
        )


def downgrade() -> None:
    with op.batch_alter_table("enroll_tokens") as batch:
        batch.drop_column("require_ota")
        batch.drop_column("ota")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("udid_attested")
