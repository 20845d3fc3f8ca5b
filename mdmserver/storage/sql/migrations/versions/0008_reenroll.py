"""re-enrollment rule and revocation: an admin's one-time allowance, revoked foreign identities

``devices.reenroll_allowed_until``: until when an admin lets one new identity take over the
device's active enrollment (``mdmserver devices allow-reenroll``); the re-enrollment that uses
it clears it. ``revoked_identities``: identities from other CAs an admin revoked
(``mdmserver devices revoke``), refused like revoked ones of ours.

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
    op.create_table(
        "revoked_identities",
        sa.Column(
            "fingerprint", sa.String(64), primary_key=True, comment="SHA-256 of the DER, hex"
        ),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_revoked_identities_device_id", "revoked_identities", ["device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_revoked_identities_device_id", table_name="revoked_identities")
    op.drop_table("revoked_identities")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reenroll_allowed_until")
