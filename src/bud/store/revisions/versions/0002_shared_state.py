"""Shared state: attempts recorded at start, catalogue log, fire buckets, processes, API keys.

Revision ID: 0002_shared_state
Revises: 0001_initial

Alters two tables (``steps``, ``executions``) and an index; SQLite alters by copying the table
(Alembic's batch mode), PostgreSQL in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_shared_state"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "catalogue_log",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("info", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "trigger_fires",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("fires", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", "bucket"),
    )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("retry_count", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("step_attempts") as batch:
        batch.create_index("ix_step_attempts_step", ["execution_id", "step_id", "attempt"])
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("attempt_base", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("attempt_base")
        batch.drop_column("max_attempts")
    with op.batch_alter_table("step_attempts") as batch:
        batch.drop_index("ix_step_attempts_step")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("retry_count")
    op.drop_table("trigger_fires")
    op.drop_table("processes")
    op.drop_table("catalogue_log")
    op.drop_table("api_keys")
