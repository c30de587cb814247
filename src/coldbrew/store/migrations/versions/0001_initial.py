"""Initial schema: items, users, interactions, vectors, model versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamp(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(200), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        _stamp("updated_at"),
    )
    op.create_table(
        "users",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        _stamp("updated_at"),
    )
    op.create_table(
        "interactions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("interaction_id", sa.String(200), nullable=False, unique=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("timestamp", sa.Float, nullable=False),
    )
    op.create_index("ix_interactions_user", "interactions", ["user_id"])
    op.create_table(
        "vectors",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("owner_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(300), primary_key=True),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(300), nullable=False, unique=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        _stamp("created_at"),
    )


def downgrade() -> None:
    for table in ("model_versions", "vectors", "interactions", "users", "items"):
        op.drop_table(table)
