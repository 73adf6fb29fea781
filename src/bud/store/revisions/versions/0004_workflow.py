"""Durable waits for events: the ``waits`` table (wait_for_event, cancel_on).

Revision ID: 0004_workflow
Revises: 0003_examples

Fan-out items need nothing new: they are rows of ``steps``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_workflow"
down_revision = "0003_examples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waits",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("filter", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", "event_type"),
    )
    op.create_index("ix_waits_type", "waits", ["event_type"])
    op.create_index("ix_waits_execution", "waits", ["execution_id"])


def downgrade() -> None:
    op.drop_index("ix_waits_execution", table_name="waits")
    op.drop_index("ix_waits_type", table_name="waits")
    op.drop_table("waits")
