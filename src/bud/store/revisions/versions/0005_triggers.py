"""Schedule triggers, the lifecycle outbox, inbound webhooks.

Revision ID: 0005_triggers
Revises: 0004_workflow

Adds ``triggers.schedule`` and three tables: ``trigger_schedules`` (each schedule's next due
tick), ``lifecycle_outbox`` (executions whose ``execution.<status>`` event is not yet
ingested) and ``hooks`` (inbound webhooks, secrets encrypted).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_triggers"
down_revision = "0004_workflow"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("triggers") as batch:
        batch.add_column(sa.Column("schedule", Json, nullable=True))
    op.create_table(
        "trigger_schedules",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("last_tick_at", sa.Float(), nullable=True),
        sa.Column("last_fired_at", sa.Float(), nullable=True),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id"),
    )
    op.create_index("ix_trigger_schedules_next_at", "trigger_schedules", ["next_at"])
    op.create_table(
        "lifecycle_outbox",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("execution", Json, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "hooks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("hooks")
    op.drop_table("lifecycle_outbox")
    op.drop_index("ix_trigger_schedules_next_at", table_name="trigger_schedules")
    op.drop_table("trigger_schedules")
    with op.batch_alter_table("triggers") as batch:
        batch.drop_column("schedule")
