"""`conveyor run`: run the pipeline of the current directory through the run chain.

    start describing the checkout (git) → find the file → runs.chain.execute_request with
    FolderSource (the folder; its pristine checkout started early), NewRun (recover, create,
    claim) and TerminalSurface (view, signals) → summary → exit code

Start-up is most of a short run's time, and imports keep Python's one thread busy, so git
works meanwhile on another core: the commands that describe the checkout start before
asyncio and the engine are imported, and the pristine checkout of a GitLab file (whose jobs
are isolated) starts before the file is parsed and the store opened (runs.sources). If the
run is not created after all (invalid file, unknown --job, workflow rules), the folders
made for it are removed. The cycle collector waits until start-up is over.

Exit codes (DESIGN.md): 0 success (also when workflow rules exclude the pipeline), 1 the
pipeline failed or was canceled from elsewhere, 2 invalid config or usage (ConfigError /
UsageError, rendered by cli.py), 130 interrupted: SIGINT or SIGTERM stops every job's
process group (a second signal kills them at once), marks the run canceled, then exits.
`--json` prints the run record on stdout and the job lines on stderr. The run's trigger
keeps its event, pipeline file and `--job` names, from which `conveyor play` plans it again.
This module supplies only what differs for `run`; it decides no status and runs no process.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.commands.execution import relative_path
from conveyor.commands.options import (
    event_options,
    execution_options,
    input_option,
    parse_inputs,
    parse_vars,
    strict_option,
)
from conveyor.model import Event, EventKind

if TYPE_CHECKING:
    from conveyor.engine.sandbox import Sandbox
    from conveyor.git.describe import CheckoutQuery

__all__ = ["run", "run_pipeline"]


def _remove_empty_folders(folders: Sequence[Path]) -> None:
    """Remove `folders` (deepest first) where empty: those made for a run never created."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


async def run_pipeline(
    directory: Path,
    *,
    file: Path | None,
    event: Event,
    jobs: Sequence[str],
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
    checkout: CheckoutQuery | None = None,
    strict: bool = False,
    sandbox: Sandbox | None = None,
    inputs: Mapping[str, str] | None = None,
) -> int:
    """The whole `conveyor run`; returns the exit code. `event`: the kind, ref, sha and
    variables asked for (the checkout describes the rest); `checkout`: the git commands
    that describe `directory` for it, when the caller has started them already; `strict`:
    an unreadable GitLab include is an error (`--strict`); `sandbox`: how jobs are
    confined (None: not at all, as on a developer's own machine); `inputs`: the values of
    a GitLab file's own `spec:inputs` (`--input`, text)."""
    from conveyor.clock import SYSTEM_CLOCK
    from conveyor.commands.execution import TerminalSurface, finish_in_terminal
    from conveyor.config import find_pipeline_file
    from conveyor.engine.sandbox import NO_SANDBOX
    from conveyor.git.describe import start_checkout_query
    from conveyor.runs.chain import RunRequest, execute_request
    from conveyor.runs.sources import FolderSource
    from conveyor.runs.starts import NewRun
    from conveyor.store.paths import home_dir, new_run_id, run_dir

    ref, sha = event.ref or None, event.sha or None
    query = checkout or start_checkout_query(directory, kind=event.kind, ref=ref, sha=sha)
    try:
        home = home_dir(directory, env)
        # Relative to the working directory, so messages say `.conveyor.yml:3:5` as validate does.
        pipeline_file = file if file is not None else relative_path(find_pipeline_file(directory))
    except BaseException:
        query.close()
        raise
    run_id = new_run_id()
    folder = run_dir(home, run_id)
    made_folders = [path for path in (*reversed(folder.parents), folder) if not path.exists()]
    surface = TerminalSurface(as_json=as_json)
    start = NewRun(
        home, run_id, pipeline_file, tuple(jobs), SYSTEM_CLOCK, surface.notice, surface.say
    )
    request = RunRequest(
        event,
        str(pipeline_file),
        jobs=tuple(jobs),
        concurrency=concurrency,
        env=env,
        strict=strict,
        inputs=inputs or {},
        sandbox=sandbox or NO_SANDBOX,
    )
    source = FolderSource(directory, query, pipeline_file, folder)
    try:
        record = await execute_request(request, source, start, surface)
    finally:
        if start.store is not None:
            start.store.close()
        if not start.is_created:
            _remove_empty_folders(made_folders)
    return 0 if record is None else finish_in_terminal(record, surface)


@click.command()
@event_options
@click.option(
    "--job",
    "jobs",
    multiple=True,
    metavar="NAME",
    help="Run only this job and what it needs (repeatable); plays manual jobs.",
)
@execution_options
@strict_option
@input_option
@click.option(
    "--sandbox",
    "use_sandbox",
    is_flag=True,
    help="Run each job in a bubblewrap sandbox (as the server does; needs bwrap).",
)
@click.option(
    "--no-network",
    is_flag=True,
    help="With --sandbox: jobs see loopback only (implies --sandbox).",
)
def run(
    file: Path | None,
    event: str,
    ref: str | None,
    sha: str | None,
    jobs: tuple[str, ...],
    variables: tuple[str, ...],
    concurrency: int | None,
    as_json: bool,
    strict: bool,
    inputs: tuple[str, ...],
    use_sandbox: bool,
    no_network: bool,
) -> None:
    """Run the pipeline in the current directory."""
    values = parse_vars(variables)
    given_inputs = parse_inputs(inputs)
    directory, kind = Path.cwd(), EventKind(event)
    asked = Event(kind=kind, ref=ref or "", sha=sha or "", variables=values)
    gc.disable()  # until start-up is over (`settle_start_up_memory`): imports make no cycles
    from conveyor.git.describe import start_checkout_query

    # git describes the checkout on another core while asyncio and the engine are imported.
    checkout = start_checkout_query(directory, kind=kind, ref=ref, sha=sha)
    try:
        import asyncio

        from conveyor.engine.runner import pidfd_child_watcher
        from conveyor.engine.sandbox import Sandbox

        sandbox = Sandbox("bwrap", network=not no_network) if use_sandbox or no_network else None

        async def run_with_pidfds() -> int:
            with pidfd_child_watcher():
                return await run_pipeline(
                    directory,
                    file=file,
                    event=asked,
                    jobs=jobs,
                    concurrency=concurrency,
                    as_json=as_json,
                    env=os.environ,
                    checkout=checkout,
                    strict=strict,
                    sandbox=sandbox,
                    inputs=given_inputs,
                )

        code = asyncio.run(run_with_pidfds())
    finally:
        checkout.close()
        gc.enable()
    sys.exit(code)  # SystemExit passes through click's non-standalone main unchanged
