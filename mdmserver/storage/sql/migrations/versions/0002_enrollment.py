"""enrollment: tokens, one-time SCEP challenges, issued certificates, device tags

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:25:55.235738
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enroll_tokens",
        sa.Column(
            "id",
            sa.String(length=32),
            nullable=False,
            comment="public id, shown by enroll-token list",
        ),
        sa.Column(
            "token_hash", sa.String(length=64), nullable=False, comment="SHA-256 of the token, hex"
        ),
        sa.Column(
            "prefix",
            sa.String(length=16),
            nullable=False,
            comment="first characters, to recognise it",
        ),
        sa.Column(
            "max_uses",
            sa.Integer(),
            nullable=True,
            comment="certificates it may issue; NULL: unlimited",
        ),
        sa.Column("uses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_enroll_tokens_hash"),
    )
    op.create_table(
        "device_tags",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["enroll_tokens.id"],
        ),
        sa.PrimaryKeyConstraint("device_id", "tag"),
    )
    op.create_index(op.f("ix_device_tags_tag"), "device_tags", ["tag"], unique=False)
    op.create_table(
        "enroll_token_tags",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["enroll_tokens.id"],
        ),
        sa.PrimaryKeyConstraint("token_id", "tag"),
    )
    op.create_table(
        "issued_certs",
        sa.Column("serial", sa.String(length=40), nullable=False, comment="hex"),
        sa.Column(
            "fingerprint", sa.String(length=64), nullable=False, comment="SHA-256 of the DER, hex"
        ),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column(
            "method",
            sa.String(length=16),
            nullable=False,
            comment="enroll, renew (challenge) or renewalreq",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["enroll_tokens.id"],
        ),
        sa.PrimaryKeyConstraint("serial"),
        sa.UniqueConstraint("fingerprint", name="uq_issued_certs_fingerprint"),
    )
    op.create_index(op.f("ix_issued_certs_device_id"), "issued_certs", ["device_id"], unique=False)
    op.create_table(
        "scep_challenges",
        sa.Column(
            "id", sa.String(length=64), nullable=False, comment="SHA-256 of the challenge, hex"
        ),
        sa.Column("purpose", sa.String(length=16), nullable=False, comment="enroll or renew"),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["enroll_tokens.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_scep_challenges_device_id"), "scep_challenges", ["device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scep_challenges_device_id"), table_name="scep_challenges")
    op.drop_table("scep_challenges")
    op.drop_index(op.f("ix_issued_certs_device_id"), table_name="issued_certs")
    op.drop_table("issued_certs")
    op.drop_table("enroll_token_tags")
    op.drop_index(op.f("ix_device_tags_tag"), table_name="device_tags")
    op.drop_table("device_tags")
    op.drop_table("enroll_tokens")
