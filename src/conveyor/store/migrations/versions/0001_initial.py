"""The first schema: runs, jobs (every attempt), processes, deliveries, monitor snapshots.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from conveyor.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("pipeline_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("repo", sa.String(512), nullable=False),
        sa.Column("ref", sa.String(512), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("trigger_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("owner_pid", sa.Integer, nullable=True),
        sa.Column("owner_started_ticks", sa.BigInteger, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
        sa.UniqueConstraint("number", name="uq_runs_number"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_repo_ref", "runs", ["repo", "ref"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("allow_failure", sa.Boolean, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("needs_json", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("steps_json", sa.Text, nullable=False),
        # Constraint order as schema.py's create_all emits it: the CREATE TABLE texts match.
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("run_id", "name", "attempt", name="uq_jobs_run_id_name_attempt"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_jobs_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "processes",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("pgid", sa.Integer, nullable=False),
        sa.Column("job", sa.String(512), nullable=False),
        sa.Column("started_ticks", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_processes_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "pgid", name="pk_processes"),
    )
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_deliveries"),
    )
    op.create_table(
        "monitor_snapshots",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("fetched_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_monitor_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("monitor_snapshots")
    op.drop_table("deliveries")
    op.drop_table("processes")
    op.drop_table("jobs")
    op.drop_index("ix_runs_repo_ref", table_name="runs")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_table("runs")
