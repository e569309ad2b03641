"""`conveyor monitor [-c conveyor.toml] [--json]`: one sync of the watched pipelines, printed.

One chain, no server: load settings (a missing or implausible token exits 2 before any
request) -> configure logging (console on stderr, warnings only, secrets masked) -> one sync
tick -> a table on stdout (or the `GET /api/v1/pipelines` JSON with --json). Exit 0 when
every target was fetched, 1 when any is stale (its error is in the output).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click

from conveyor.commands.options import config_option
from conveyor.monitor.cache import CacheEntry

__all__ = ["monitor", "render_table"]


@click.command()
@config_option("Settings file with the [monitor] section.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def monitor(config_path: Path, as_json: bool) -> None:
    """Sync watched pipelines once and print them."""
    from conveyor.logconfig import configure_logging
    from conveyor.monitor.service import Monitor
    from conveyor.settings import held_secret_values, load_settings

    env = dict(os.environ)
    settings = load_settings(config_path, env)
    configure_logging(json=False, secrets=held_secret_values(settings, env), level=logging.WARNING)
    watcher = Monitor(settings.monitor, env)

    async def sync() -> None:
        try:
            await watcher.sync_once()
        finally:
            await watcher.stop()

    asyncio.run(sync())
    entries = watcher.cache.entries()
    if as_json:
        sys.stdout.buffer.write(watcher.cache.list_body() + b"\n")
        sys.stdout.flush()
    else:
        from rich.console import Console

        Console().print(render_table(entries))
    if any(entry.is_stale for entry in entries):
        sys.exit(1)


def render_table(entries: tuple[CacheEntry, ...]) -> object:
    """A rich Table: one row per target, its latest pipeline and whether it is fresh."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Watched pipelines")
    for column in ("target", "provider", "status", "id", "sha", "updated", "duration", "state"):
        table.add_column(column)
    colors = {"success": "green", "failed": "red", "running": "yellow", "canceled": "dim"}
    for entry in entries:
        latest = entry.latest
        status = str(latest.status) if latest else "-"
        updated = latest.updated_at or latest.created_at if latest else None
        duration = latest.duration_s if latest else None
        table.add_row(
            escape(entry.key),
            entry.provider,
            f"[{colors.get(status, 'white')}]{status}[/]",
            str(latest.id) if latest else "-",
            (latest.sha or "-")[:8] if latest else "-",
            updated.strftime("%Y-%m-%d %H:%M") if updated else "-",
            f"{duration:.0f}s" if duration is not None else "-",
            f"[red]stale: {escape(entry.error or '')}[/]" if entry.is_stale else "fresh",
        )
    return table
