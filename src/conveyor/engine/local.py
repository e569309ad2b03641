"""LocalExecutor: runs attempts on this host, each step in its own process group.

One attempt: workspace (the shared folder, or a copy of the run's pristine checkout), GitLab
cache restored, artifacts and dotenv variables of earlier jobs received, the steps until one
fails (the time limit covers them all; a step's own timeout can only shorten it), the
after_steps (GitLab's after_script: after the steps even after a failure, with their own
limit, never changing the status), then cache saved, artifacts and dotenv report collected.
GitLab's cache and dotenv modules are imported only by jobs that use them: most runs never
do, and a short run's time is mostly imports.

Each step runs in the spec's sandbox when it is on (engine.sandbox): the attempt's folder
writable, conveyor's home and the run's folder (database, logs, mirrors, other jobs' copies)
replaced by empty folders; artifacts, caches and dotenv files move outside it, here.

Every output line is masked with the spec's values and numbered from `spec.first_line`,
then handed to `on_output` as one batch per chunk the runner reads. A `cancel` message
cancels the attempt's task: the runner stops its process group and `run` answers
`canceled` with the steps as far as they got. This module decides no status beyond the
attempt's own outcome (retries and allowed failures are the scheduler's, with status.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.artifacts import (
    artifacts_dir,
    collect_artifacts,
    dotenv_dir,
    restore_artifacts,
    should_collect,
)
from conveyor.engine.env import step_environment
from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink
from conveyor.engine.runner import LineSink, StepResult, StepRunner, StepSpec
from conveyor.engine.workspace import JobWorkspaces
from conveyor.masking import Masker
from conveyor.model import LogRecord, Status, Step, StepRecord, Stream

if TYPE_CHECKING:
    from conveyor.engine.cache import CacheStore

__all__ = ["AFTER_STEPS_TIMEOUT_S", "LocalExecutor"]

AFTER_STEPS_TIMEOUT_S = 300.0  # GitLab's after_script limit


class _Attempt:
    """One attempt while it runs: its output numbering and its steps as far as they got."""

    __slots__ = ("clock", "line", "masker", "on_output", "spec", "steps")

    def __init__(
        self, spec: AttemptSpec, on_output: OutputSink, masker: Masker, line: int, clock: Clock
    ) -> None:
        self.spec = spec
        self.on_output = on_output
        self.masker = masker
        self.line = line
        self.clock = clock
        self.steps: list[StepRecord] = []

    def write(self, step: str, stream: Stream, texts: Sequence[str]) -> None:
        spec, ts, n = self.spec, self.clock.now(), self.line
        mask = self.masker.mask if self.masker.is_active else None
        records = [
            LogRecord(ts, spec.run_id, spec.job, step, stream, number, mask(t) if mask else t)
            for number, t in enumerate(texts, start=n + 1)
        ]
        self.line = n + len(records)
        self.on_output(records)

    def say(self, text: str, step: str = "") -> None:
        self.write(step, Stream.SYSTEM, [text])

    def sink(self, step: str) -> LineSink:
        def on_lines(stream: Stream, texts: Sequence[str]) -> None:
            self.write(step, stream, texts)

        return on_lines

    def result(
        self, status: Status, failure: StepResult | None = None, reason: str = ""
    ) -> AttemptResult:
        return AttemptResult(
            status=status,
            steps=tuple(self.steps),
            last_line=self.line,
            exit_code=0 if status is Status.SUCCESS else (failure.exit_code if failure else None),
            timed_out=failure.timed_out if failure else False,
            reason=self.masker.mask(reason) if reason else None,
        )


class LocalExecutor:
    """Runs the attempts of one run on this host. `workspaces` are the run's job folders
    (the CLI starts its pristine checkout early), `run_dir` holds artifacts and dotenv
    reports; GitLab caches are kept between runs under conveyor's `home` (engine.cache),
    or in the `caches` store given (a worker: the server's)."""

    __slots__ = (
        "_attempts", "_running", "caches", "clock", "home", "run_dir", "runner", "workspaces",
    )  # fmt: skip

    def __init__(
        self,
        runner: StepRunner,
        workspaces: JobWorkspaces,
        run_dir: Path,
        home: Path | None,
        clock: Clock = SYSTEM_CLOCK,
        caches: CacheStore | None = None,
    ) -> None:
        self.runner = runner
        self.workspaces = workspaces
        self.run_dir = run_dir
        self.home = home
        self.clock = clock
        self.caches = caches
        self._running: dict[tuple[str, str], asyncio.Task[AttemptResult]] = {}
        self._attempts: dict[tuple[str, str], _Attempt] = {}

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        key = (spec.run_id, spec.job)
        attempt = _Attempt(spec, on_output, Masker(spec.mask), spec.first_line - 1, self.clock)
        task = asyncio.ensure_future(self._run(attempt))
        self._running[key], self._attempts[key] = task, attempt
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled: propagate
            return attempt.result(Status.CANCELED)  # a cancel message
        finally:
            self._running.pop(key, None)
            self._attempts.pop(key, None)

    def cancel(self, run_id: str, job: str) -> None:
        task = self._running.get((run_id, job))
        if task is not None:
            task.cancel()

    async def _run(self, attempt: _Attempt) -> AttemptResult:
        spec = attempt.spec
        deadline = time.monotonic() + spec.timeout_s
        async with self.workspaces.open(Path(spec.workspace.job_dir)) as where:
            env = dict(spec.env)
            keys = await self._receive(attempt, where, env)
            failure, reason = await self._steps(attempt, spec.steps, env, where, deadline)
            if spec.after_steps:
                after_env = {**env, "CI_JOB_STATUS": "success" if failure is None else "failed"}
                after_deadline = time.monotonic() + AFTER_STEPS_TIMEOUT_S
                after, after_reason = await self._steps(
                    attempt, spec.after_steps, after_env, where, after_deadline, record=False
                )
                if after is not None:
                    attempt.say(f"after_steps failed ({after_reason}); the job status is unchanged")
            refused = await self._hand_on(attempt, where, keys, succeeded=failure is None)
            if refused is not None and failure is None:  # GitLab rejects the upload: job fails
                failure, reason = StepResult(None, error=refused), refused
        if failure is None:
            return attempt.result(Status.SUCCESS)
        return attempt.result(Status.FAILED, failure, reason or "failed")

    async def _receive(
        self, attempt: _Attempt, where: Path, env: dict[str, str]
    ) -> list[str | None]:
        """Cache, artifacts and dotenv variables in (in GitLab's order); the cache keys used."""
        spec = attempt.spec
        keys: list[str | None] = []
        if spec.caches:
            from conveyor.engine.cache import restore_caches

            keys = await restore_caches(
                spec.caches,
                store=self._cache_store(),
                workspace=where,
                env=env,
                say=attempt.say,
            )
        if spec.workspace.isolate and spec.artifacts_from:
            sources = [artifacts_dir(self.run_dir, name) for name in spec.artifacts_from]
            sources = [source for source in sources if source.is_dir()]  # saved any?
            if sources:
                await asyncio.to_thread(restore_artifacts, sources, where)
        # dotenv variables rank above job variables (dotenv.py); none saved: no folder.
        if spec.artifacts_from and dotenv_dir(self.run_dir).is_dir():
            from conveyor.engine.dotenv import received_dotenv

            env.update(received_dotenv(self.run_dir, spec.artifacts_from))
        return keys

    async def _hand_on(
        self, attempt: _Attempt, where: Path, keys: list[str | None], *, succeeded: bool
    ) -> str | None:
        """Cache saved, artifacts and dotenv report collected; the dotenv refusal, if any."""
        spec = attempt.spec
        if spec.caches:
            from conveyor.engine.cache import save_caches

            await save_caches(
                spec.caches,
                keys,
                store=self._cache_store(),
                workspace=where,
                succeeded=succeeded,
                say=attempt.say,
            )
        artifacts = spec.artifacts
        if artifacts is not None and should_collect(artifacts.when, succeeded=succeeded):
            dest = artifacts_dir(self.run_dir, spec.job)
            saved = await asyncio.to_thread(collect_artifacts, where, artifacts, dest)
            attempt.say(f"saved {len(saved)} artifact file(s)")
        if artifacts is not None and artifacts.dotenv:
            from conveyor.engine.dotenv import collect_dotenv, dotenv_path

            dest = dotenv_path(self.run_dir, spec.job)
            return await collect_dotenv(artifacts.dotenv, where, dest, attempt.say)
        return None

    def _cache_store(self) -> CacheStore:
        """The store given, else the folders under `<home>/cache` (imported only by a job
        with a cache)."""
        if self.caches is None:
            from conveyor.engine.cache import FolderCaches, cache_root

            self.caches = FolderCaches(cache_root(self.home, self.run_dir))
        return self.caches

    async def _steps(
        self,
        attempt: _Attempt,
        steps: Sequence[Step],
        job_env: Mapping[str, str],
        where: Path,
        deadline: float,
        *,
        record: bool = True,
    ) -> tuple[StepResult | None, str | None]:
        """Run `steps` until one fails; (the failing result or None, the reason)."""
        spec = attempt.spec
        for step in steps:
            started_at = self.clock.now()
            step_deadline = deadline
            if step.timeout_s is not None:
                step_deadline = min(deadline, time.monotonic() + step.timeout_s)
            result = await self._step(attempt, step, job_env, where, step_deadline)
            if record:
                status = Status.SUCCESS if result.is_success else Status.FAILED
                attempt.steps.append(
                    StepRecord(step.name, status, result.exit_code, started_at, self.clock.now())
                )
            if result.is_success:
                continue
            if result.timed_out:
                limit = step.timeout_s if step_deadline < deadline else None
                reason = (
                    f"step {step.name!r} timed out after {limit:g}s"
                    if limit is not None
                    else f"job timed out after {_limit_s(spec, record):g}s"
                )
            elif result.error is not None:
                reason = f"step {step.name!r}: {result.error}"
            else:
                reason = f"step {step.name!r} exited with code {result.exit_code}"
            attempt.say(reason, step.name)
            return result, reason
        return None, None

    async def _step(
        self,
        attempt: _Attempt,
        step: Step,
        job_env: Mapping[str, str],
        where: Path,
        deadline: float,
    ) -> StepResult:
        spec = attempt.spec
        workdir = step.workdir or spec.workdir
        cwd = where / workdir if workdir else where
        if not cwd.is_dir():
            return StepResult(None, error=f"workdir {workdir!r} does not exist in the workspace")
        env = step_environment(
            job_env, step, event_variables=spec.event_variables, secrets=spec.secrets
        )
        command = StepSpec(
            step.run,
            env,
            cwd,
            spec.shell,
            deadline,
            spec.run_id,
            spec.job,
            sandbox=spec.sandbox,
            workspace=where,
            hidden=self._hidden() if spec.sandbox.is_on else (),
        )
        return await self.runner.run_step(command, attempt.sink(step.name))

    def _hidden(self) -> tuple[str, ...]:
        """The folders of conveyor's a sandboxed job must not see (those that exist: the
        sandbox mounts an empty folder over each)."""
        folders = [path.resolve() for path in (self.home, self.run_dir) if path is not None]
        return tuple(
            str(path)
            for path in folders
            if path.is_dir() and not any(o in path.parents for o in folders)  # hidden already
        )


def _limit_s(spec: AttemptSpec, is_job: bool) -> float:
    return spec.timeout_s if is_job else AFTER_STEPS_TIMEOUT_S
