"""rate limits: counters per limit, key and window, shared by the worker processes

Revision ID: 0011_ratelimits
Revises: 0001
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_ratelimits"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column(
            "bucket",
            sa.String(length=32),
            nullable=False,
            comment="which limit: enroll_address, ...",
        ),
        sa.Column(
            "key_hash",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of what is counted, hex",
        ),
        sa.Column("window_start", sa.BigInteger(), nullable=False, comment="Unix seconds"),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "key_hash", "window_start"),
    )
    op.create_index("ix_rate_limits_window", "rate_limits", ["window_start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rate_limits_window", table_name="rate_limits")
    op.drop_table("rate_limits")
