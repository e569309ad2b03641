"""`conveyor play RUN_ID JOB`: play a manual job of a local run inside that run, as GitLab
(and the API's play) does: same run id, the played job and the jobs it held back run, every
other job keeps its record. `conveyor retry RUN_ID JOB` retries a failed or canceled job the
same way (the API's job retry): its next attempt, then the jobs after it that never ran.

    store → recover dead runs → the run and its refusals → the run's event (its trigger,
    described again at its sha) → its pipeline file → plan (its `--job` selection)
    → resume (engine.resume) → claim, reopen → execute in the terminal → exit code

The run is planned again from what `conveyor run` stored in its trigger: the event (ref,
sha, kind, variables), the pipeline file and the `--job` names; changed and listed files
are described again from the checkout at the run's sha. Where the pipeline comes from:

- a pipeline sharing one workspace (native): the project folder as it is now, like
  `conveyor run`. Its jobs run in that folder, so the folder must still be the run's
  commit: when the checkout's HEAD is another commit the play is refused (there is no
  override: the run record names its commit, and a played job must not run other files).
  Files that earlier jobs left in the folder are used as they are (not restored from the
  saved artifacts, unlike the server, whose worktree is fresh).
- isolated jobs (GitLab): the pipeline file of a pristine checkout of the run's sha
  (through `engine.workspace.JobWorkspaces`, which the jobs then run from), so HEAD may have
  moved on; a pipeline file that commit does not hold is read from the folder, as the run
  read it.

Refusals (exit 2, one line, the API's 409 reasons; runs.starts.ResumedRun): unknown run,
unknown job (did-you-mean), job not manual or already played (retry: job not failed or
canceled), run canceled, run still executing in another process (its owner pid is alive),
HEAD moved (shared workspace), or a pipeline that no longer plans the run's jobs. Two plays
at once are serialized by a lock file in conveyor's home held from the last check to the
claim: the second sees the run executing and is refused. The rest is the run chain
(runs.chain) with RunFolderSource and the terminal surface, shared with `conveyor run`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conveyor.commands.options import execution_options
from conveyor.errors import UsageError
from conveyor.model import RunRecord

if TYPE_CHECKING:
    from conveyor.store.base import RunStore

__all__ = ["play", "play_job", "retry"]


def _find_run(store: RunStore, run_id: str, home: Path) -> RunRecord:
    from conveyor.store.paths import is_valid_run_id

    run = store.get_run(run_id) if is_valid_run_id(run_id) else None
    if run is None:
        raise UsageError(_no_such_run(run_id, home))
    return run


def _no_such_run(run_id: str, home: Path) -> str:
    return f"run {run_id!r}: no such run in {home} (list runs with `conveyor runs`)"


def _selection(trigger: Mapping[str, object]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The `--job` names of the run (`conveyor run`) and the jobs the server was asked to
    play when it started (`play`, server runs)."""
    selected, played = trigger.get("selected_jobs"), trigger.get("play")
    return (
        tuple(str(name) for name in selected) if isinstance(selected, list) else (),
        frozenset(str(name) for name in played) if isinstance(played, list) else frozenset(),
    )


async def play_job(
    directory: Path,
    run_id: str,
    job: str,
    *,
    concurrency: int | None,
    as_json: bool,
    env: Mapping[str, str],
    is_retry: bool = False,
) -> int:
    """The whole `conveyor play` (`conveyor retry` with `is_retry`); returns the exit code."""
    from conveyor.clock import SYSTEM_CLOCK
    from conveyor.commands.execution import TerminalSurface, finish_in_terminal
    from conveyor.config import find_pipeline_file
    from conveyor.runs.chain import RunRequest, execute_request
    from conveyor.runs.records import recover_dead_runs
    from conveyor.runs.sources import RunFolderSource
    from conveyor.runs.starts import ResumedRun
    from conveyor.store import open_store
    from conveyor.store.paths import DB_NAME, home_dir, run_dir
    from conveyor.triggers import event_from_trigger

    home = home_dir(directory, env)
    if not (home / DB_NAME).is_file():  # reading must not leave a `.conveyor/` behind
        raise UsageError(_no_such_run(run_id, home))
    surface = TerminalSurface(as_json=as_json)
    store = open_store(home)
    try:
        for orphan_id in recover_dead_runs(store, SYSTEM_CLOCK):
            surface.say(f"recovered run {orphan_id}: its conveyor process had died")
        run = _find_run(store, run_id, home)  # read after recovery: as it left the run
        start = ResumedRun(store, home, run, job, surface.say, is_retry=is_retry)
        start.check()
        stored_file = run.trigger.get("pipeline_file")
        pipeline_file = Path(stored_file) if isinstance(stored_file, str) else None
        pipeline_file = pipeline_file or find_pipeline_file(directory)
        # The run's event from its trigger (variables that were a secret read from `env`).
        event = event_from_trigger(run.trigger, env)
        event = replace(event, kind=run.event, ref=run.ref, sha=run.sha, repo=run.repo)
        selected, played = _selection(run.trigger)
        request = RunRequest(
            event,
            str(pipeline_file),
            jobs=selected,
            play=played,
            concurrency=concurrency,
            env=env,
        )
        source = RunFolderSource(directory, pipeline_file, run_dir(home, run.run_id))
        record = await execute_request(request, source, start, surface)
    finally:
        store.close()
    if record is None:  # pragma: no cover - ResumedRun refuses an excluded pipeline
        return 2
    return finish_in_terminal(record, surface)


@click.command()
@click.argument("run_id")
@click.argument("job")
@execution_options
def play(run_id: str, job: str, concurrency: int | None, as_json: bool) -> None:
    """Play manual job JOB of run RUN_ID inside that run (same run id).

    Run it in the project folder of the run. The played job and the jobs it held back run
    (with `conveyor run`'s view, summary and exit codes); every other job keeps its record.
    A pipeline whose jobs share the project folder is played only while the folder's HEAD
    is still the run's commit; GitLab pipelines run from a clean checkout of that commit.
    """
    _resume_in_terminal(run_id, job, concurrency, as_json, is_retry=False)


@click.command()
@click.argument("run_id")
@click.argument("job")
@execution_options
def retry(run_id: str, job: str, concurrency: int | None, as_json: bool) -> None:
    """Retry failed or canceled job JOB of run RUN_ID inside that run (same run id).

    Run it in the project folder of the run. The job runs again as its next attempt, then
    the jobs after it that never ran (skipped or canceled); every other job keeps its
    record, and the run's status is computed again over all jobs.
    """
    _resume_in_terminal(run_id, job, concurrency, as_json, is_retry=True)


def _resume_in_terminal(
    run_id: str, job: str, concurrency: int | None, as_json: bool, *, is_retry: bool
) -> None:
    import asyncio

    from conveyor.engine.runner import pidfd_child_watcher

    directory = Path.cwd()

    async def resume_with_pidfds() -> int:
        with pidfd_child_watcher():
            return await play_job(
                directory, run_id, job, concurrency=concurrency, as_json=as_json,
                env=os.environ, is_retry=is_retry,
            )  # fmt: skip

    sys.exit(asyncio.run(resume_with_pidfds()))  # SystemExit passes through click's main
