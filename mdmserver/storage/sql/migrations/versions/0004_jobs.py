"""jobs: the push outbox and each enrollment's push status

Revision ID: 0004_jobs
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_jobs"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "push_outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column("repush", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "claimed_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="a dispatcher is handing it to the job queue",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "push_status",
        sa.Column("enrollment_id", sa.String(length=300), nullable=False),
        sa.Column(
            "last_push_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="last attempt, whatever came back",
        ),
        sa.Column(
            "last_outcome",
            sa.String(length=32),
            nullable=False,
            comment="delivered, stale_token, ...",
        ),
        sa.Column("last_reason", sa.String(length=64), nullable=True),
        sa.Column(
            "attempts",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="re-pushes",
        ),
        sa.PrimaryKeyConstraint("enrollment_id"),
    )
    op.create_index("ix_push_status_outcome", "push_status", ["last_outcome"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_push_status_outcome", table_name="push_status")
    op.drop_table("push_status")
    op.drop_table("push_outbox")
