"""The run store's tables (SQLAlchemy Core metadata), the single source of the schema.

Alembic migrations in `store/migrations/versions/` must produce exactly this metadata (a test
runs autogenerate and expects no difference). Times are stored as UTC and always come back
as aware UTC datetimes (`UtcDateTime`). Must not open connections or run queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "UtcDateTime",
    "deliveries",
    "delivery_bodies",
    "jobs",
    "metadata",
    "monitor_history",
    "processes",
    "runs",
    "snapshots",
]


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the backend keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the run store only takes aware UTC datetimes")
        utc = value.astimezone(UTC)
        # SQLite has no time zone type: keep a naive UTC text so ordering stays correct.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("number", sa.Integer, nullable=False, unique=True),
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
    sa.Index(None, "status"),
    sa.Index(None, "repo", "ref"),
)

# One row per attempt of a job; `id` keeps insertion order.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.String(128),
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
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
    sa.Column("worker", sa.String(255), nullable=True),
    sa.UniqueConstraint("run_id", "name", "attempt"),
)

processes = sa.Table(
    "processes",
    metadata,
    sa.Column(
        "run_id",
        sa.String(128),
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("pgid", sa.Integer, primary_key=True),
    sa.Column("job", sa.String(512), nullable=False),
    sa.Column("started_ticks", sa.BigInteger, nullable=False),
)

# Webhook delivery ids; the run may be created after the claim, so no foreign key.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(128), nullable=False),
)

# Webhook bodies seen (`<provider>:sha256:<hex>`), when: the same signed body again within
# the window is a duplicate whatever its delivery id. Written with its run; no foreign key
# either, like `deliveries`.
delivery_bodies = sa.Table(
    "delivery_bodies",
    metadata,
    sa.Column("body_digest", sa.String(80), primary_key=True),
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
)

snapshots = sa.Table(
    "monitor_snapshots",
    metadata,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
)

# Each monitor target's pipelines (newest kept, `monitor.history_limit` per key). Upstream
# ids exceed 32 bits (GitHub run ids), hence BigInteger.
monitor_history = sa.Table(
    "monitor_history",
    metadata,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("pipeline_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sha", sa.String(64), nullable=True),
    sa.Column("web_url", sa.String(2048), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=True),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
)
