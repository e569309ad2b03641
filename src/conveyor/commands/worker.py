"""`conveyor worker -c worker.toml [--queue Q]... [--name NAME] [--concurrency N]`: join the
fleet (docs/workers.md).

One chain: load worker.toml (secrets from the environment; any problem exits 2) -> configure
logging once (JSON, the broker URL and clone tokens masked) -> make the process
non-dumpable (its jobs cannot read its /proc files) and warn when bubblewrap cannot run
here (jobs of a server with `[sandbox] mode = "bwrap"` then fail) -> the home folder (`[worker]
home`, else CONVEYOR_HOME, else ~/.conveyor-worker) -> the reaper of its jobs' process
groups (fleet.reaper: they die with the worker, even by kill -9) -> an AttemptHost there
(fleet.host: mirrors, job folders) -> FleetWorker.serve (fleet.worker: Celery, threads
pool, heartbeats) until SIGTERM/SIGINT, when running jobs get `[worker] grace` and are then
canceled. A worker never opens the database. Celery, redis and the engine load only here,
never on other commands' start-up.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog

from conveyor.commands.hostguard import bwrap_problem, make_undumpable
from conveyor.commands.options import config_option
from conveyor.errors import ConfigError, Problem

if TYPE_CHECKING:
    from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink
    from conveyor.fleet.host import AttemptHost

__all__ = ["worker"]

log = structlog.get_logger(__name__)


@click.command()
@config_option("Worker settings: broker variable, home, grace, clone tokens.", "worker.toml")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    metavar="TAG",
    help="A tag this worker has (repeat; jobs whose tags are all among them come here). "
    "Default: the queue `default`, for jobs without tags.",
)
@click.option("--name", default=None, help="The worker's name (default: the host name).")
@click.option(
    "--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
    help="Jobs at once.",
)  # fmt: skip
def worker(config_path: Path, queues: tuple[str, ...], name: str | None, concurrency: int) -> None:
    """Run jobs of a conveyor server's fleet on this host."""
    from conveyor.engine.runner import LocalRunner
    from conveyor.fleet.host import AttemptHost
    from conveyor.fleet.reaper import GroupReaper
    from conveyor.fleet.routing import consumed_queues
    from conveyor.fleet.worker import FleetWorker
    from conveyor.logconfig import configure_logging
    from conveyor.settings.worker import parse_worker_settings

    env = dict(os.environ)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(str(config_path), 0, 0, f"cannot read settings ({exc.strerror})")]
        ) from None
    config = parse_worker_settings(text, env, file=str(config_path))
    consumed_queues(queues)  # a bad --queue is a usage error before anything starts
    configure_logging(json=True, secrets=config.secret_values())
    make_undumpable("worker")  # its jobs cannot read the broker URL from its /proc files
    problem = bwrap_problem()
    if problem is not None:  # the server decides the sandbox: its sandboxed jobs fail here
        log.warning("worker.sandbox_unavailable", detail=f"bwrap cannot run here ({problem})")
    home = _home(config.settings.worker.home, config_path, env)
    worker_name = name or socket.gethostname()
    reaper = GroupReaper()  # the jobs' process groups die with this process
    runner = LocalRunner(store=reaper)
    host = AttemptHost(
        home,
        worker_name,
        clone_tokens=config.clone_tokens,
        runner=runner,
        held_secrets=config.secret_values(),  # masked in every job's output, as the server's
    )
    fleet_worker = FleetWorker(
        worker_name,
        queues,
        concurrency,
        config.broker_url,
        _Hosted(host),
        grace_s=config.settings.worker.grace,
    )
    try:
        code = fleet_worker.serve()
    finally:
        reaper.close()
    if code:
        raise SystemExit(code)


def _home(configured: Path | None, config_path: Path, env: Mapping[str, str]) -> Path:
    if configured is not None:
        home = (config_path.parent / configured).resolve()
    elif env.get("CONVEYOR_HOME"):
        home = Path(env["CONVEYOR_HOME"]).resolve()
    else:
        home = Path.home() / ".conveyor-worker"
    home.mkdir(parents=True, exist_ok=True)
    return home


class _Hosted:
    """The AttemptHost with the task's origin as data (fleet.worker.AttemptRunner)."""

    def __init__(self, host: AttemptHost) -> None:
        self.host = host

    async def run(
        self, spec: AttemptSpec, origin: Mapping[str, Any], on_output: OutputSink
    ) -> AttemptResult:
        from conveyor.fleet.host import origin_from_dict

        return await self.host.run(spec, origin_from_dict(origin), on_output)

    def cancel(self, run_id: str, job: str) -> None:
        self.host.cancel(run_id, job)

    async def prepare(self) -> None:
        await self.host.discard_leftovers()

    async def close(self) -> None:
        await self.host.aclose()
