"""Webhook bodies seen: a signed body sent again under a new delivery id is a duplicate.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from conveyor.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_bodies",
        sa.Column("body_digest", sa.String(80), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("body_digest", "run_id", name="pk_delivery_bodies"),
    )


def downgrade() -> None:
    op.drop_table("delivery_bodies")
