"""Vectors name their storage format (``float32``, ``float16``, ``int8``); old rows are float32.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "vectors",
        sa.Column("dtype", sa.String(16), nullable=False, server_default="float32"),
    )


def downgrade() -> None:
    with op.batch_alter_table("vectors") as batch:
        batch.drop_column("dtype")
