"""The built-in platform's history: deployment revisions, monitors, clusters' health results.

Revision ID: 0003_examples
Revises: 0002_shared_state

New tables only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_examples"
down_revision = "0002_shared_state"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "deployment_revisions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("config", Json, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source_revision", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "revision", name="uq_deployment_revision"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        "ix_deployment_revisions_deployment_id", "deployment_revisions", ["deployment_id"]
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("config", Json, nullable=False),
        sa.Column("configured_by", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id"),
    )
    op.create_index("ix_monitors_cluster_id", "monitors", ["cluster_id"])
    op.create_table(
        "cluster_checks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cluster_checks_cluster_id", "cluster_checks", ["cluster_id"])


def downgrade() -> None:
    op.drop_index("ix_cluster_checks_cluster_id", table_name="cluster_checks")
    op.drop_table("cluster_checks")
    op.drop_index("ix_monitors_cluster_id", table_name="monitors")
    op.drop_table("monitors")
    op.drop_index("ix_deployment_revisions_deployment_id", table_name="deployment_revisions")
    op.drop_table("deployment_revisions")
