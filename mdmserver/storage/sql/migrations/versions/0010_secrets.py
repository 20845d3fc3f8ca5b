"""profile_shown: the redacted copy of profiles whose secret template variables are sealed

A profile built from a template with secret variables keeps its content sealed in
profiles.content (AES-256-GCM under MDM_HOME/secrets.key); the copy the API and CLI show, with
the secrets replaced, is here. A table rather than a column of profiles, so this branch does
not depend on the order in which the independent heads are applied.

Revision ID: 0010_secrets
Revises: 0001
Create Date: 2026-12-01 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_secrets"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profile_shown",
        sa.Column("profile_id", sa.String(length=32), nullable=False, comment="profiles.id"),
        sa.Column(
            "content", sa.LargeBinary(), nullable=False, comment="content with secrets redacted"
        ),
        sa.PrimaryKeyConstraint("profile_id"),
    )


def downgrade() -> None:
    op.drop_table("profile_shown")
