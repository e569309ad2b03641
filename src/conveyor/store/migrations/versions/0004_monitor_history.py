"""Monitor history: each target's pipelines, kept so trends and health figures survive a restart.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from conveyor.store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_history",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("pipeline_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sha", sa.String(64), nullable=True),
        sa.Column("web_url", sa.String(2048), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("key", "pipeline_id", name="pk_monitor_history"),
    )


def downgrade() -> None:
    op.drop_table("monitor_history")
