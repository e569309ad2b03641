"""The run chain: one request from its files to its final record, written once for
`conveyor run`, `conveyor play` and the server's queue.

    async with source.open() as checkout:                 # the files: folder or worktree
        pipeline = load(checkout)                         # load + validate (problems relative)
        plan = plan(pipeline, checkout.compare(event))    # workflow rules, rules, DAG
        plan, played = select_jobs(plan, request.jobs)    # `--job`
        plan = withhold_fork_secrets(plan, policy)        # a fork's PR: no secrets
        secrets = collect_secrets(plan, env, reserved)    # declared, set, not conveyor's own
        started = await start.begin(plan, secrets)        # recover, record: new, resumed, queued
        async with surface.open(plan, started) as controls:   # view, cancel, live plays
            record = await execute_run(plan, run, setup, resume=…, controls=…)
    start.finished(record)                                # notify

What differs between the callers is supplied, not branched on: a `Source` (the project
folder as it is, the folder at a run's commit, or a mirror's worktree), a `RunStart` (how
the record begins: `starts.NewRun`, `starts.ResumedRun`, `starts.QueuedRun`) and a `Surface`
(where warnings go, the live view, where cancel comes from). A problem in the user's input
raises a ConveyorError before any job runs; the caller decides what it means (exit 2, or a
failed run record). Must not: render, parse arguments or HTTP, or run a process itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from conveyor.engine.sandbox import NO_SANDBOX, Sandbox
from conveyor.errors import ConfigError, UsageError
from conveyor.model import EMPTY, Event, Pipeline, Plan, RunRecord

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import ChangesSince
    from conveyor.config.remote import GitLabFiles
    from conveyor.engine.executor import Executor
    from conveyor.engine.resume import Resume
    from conveyor.engine.scheduler import RunControls
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.store.base import RunStore

__all__ = [
    "Checkout",
    "ForkSecrets",
    "RunRequest",
    "RunStart",
    "Source",
    "Started",
    "Surface",
    "collect_secrets",
    "default_concurrency",
    "execute_request",
    "withhold_fork_secrets",
]


def default_concurrency(requested: int | None, pipeline: Pipeline) -> int:
    """Jobs at once: asked for (`--concurrency`), else the pipeline's `concurrency`, else
    the host's cores but at least 4 (jobs mostly wait on I/O and child processes)."""
    return requested or pipeline.concurrency or max(4, os.cpu_count() or 1)


# What a job that declares secrets does in a pull or merge request from a fork, which never
# gets secrets (GitHub's rule): "skip" records it skipped with the reason; "omit" runs it
# without them.
ForkSecrets = Literal["skip", "omit"]


class RunRequest(NamedTuple):
    """What to run. `event` as far as the caller knows it (the source completes it with
    the checkout's changed and listed files); `pipeline_file` as given (`-f`, the repo's
    setting, the run's trigger), None to find it; `jobs` the `--job` selection; `play`
    the manual jobs to run; `reserved_env` conveyor's own secret names, never handed to a
    pipeline that declares them; `held_secrets` every secret value conveyor holds (masked
    in job output with the pipeline's own); `sandbox` how its jobs are confined;
    `executor` where its attempts run (None: this host, engine.local)."""

    event: Event
    pipeline_file: str | None = None
    jobs: tuple[str, ...] = ()
    play: frozenset[str] = frozenset()
    concurrency: int | None = None
    reserved_env: frozenset[str] = frozenset()
    env: Mapping[str, str] = EMPTY  # conveyor's environment
    # Internal hosts `include: remote` may fetch (the server's conveyor.toml list; the
    # CONVEYOR_REMOTE_INCLUDE_ALLOW of `env` is added: outbound.remote.allow_entries).
    remote_include_allow: tuple[str, ...] = ()
    strict: bool = False  # --strict: an unreadable GitLab include is an error
    inputs: Mapping[str, str] = EMPTY  # --input: the GitLab file's own spec:inputs (text)
    fork_secrets: ForkSecrets = "skip"  # a fork's pull request: what a job with secrets does
    held_secrets: tuple[str, ...] = ()
    sandbox: Sandbox = NO_SANDBOX
    executor: Executor | None = None


class Checkout(Protocol):
    """The files of one run, while its source is open."""

    @property
    def directory(self) -> Path:
        """Where jobs run (shared workspace) or are copied from (isolated)."""
        ...

    @property
    def event(self) -> Event:
        """The request's event with the checkout's changed and listed files."""
        ...

    @property
    def loads_in_thread(self) -> bool:
        """Parse the pipeline in a worker thread (the server: its loop serves others
        meanwhile); the CLI parses on its own loop, which has nothing else to do."""
        ...

    def open_pipeline_file(self) -> AbstractAsyncContextManager[tuple[Path, str]]:
        """The pipeline file to read, and the prefix to cut from the paths in its problems."""
        ...

    def changes_since(self) -> ChangesSince:
        """What GitLab's `include:rules:changes:compare_to` are decided with (git diffs)."""
        ...

    async def compare_changes(self, pipeline: Pipeline, event: Event) -> Event:
        """`event` with GitLab `rules:changes:compare_to` diffs."""
        ...

    async def workspaces_for(self, pipeline: Pipeline, sha: str) -> JobWorkspaces | None:
        """The run's job folders when the source prepared them (else the engine makes
        them); may refuse (UsageError) a pipeline whose jobs cannot run here."""
        ...


class Source(Protocol):
    def open(self, request: RunRequest) -> AbstractAsyncContextManager[Checkout]: ...


class Started(NamedTuple):
    """A run record ready to execute: the run, the store it lives in, its folder, and the
    resume when it already has job records (a played manual job)."""

    run: RunRecord
    store: RunStore
    home: Path
    run_dir: Path
    resume: Resume | None = None


class RunStart(Protocol):
    """How a caller's run record begins and ends."""

    def is_excluded(self, plan: Plan, reason: str) -> bool:
        """True to stop when the workflow rules exclude the pipeline (no run)."""
        ...

    async def begin(
        self, plan: Plan, secrets: Mapping[str, str], checkout: Checkout, played: frozenset[str]
    ) -> Started:
        """Record the run as started (recover dead runs, create, resume or claim it);
        `played`: the manual jobs the request plays. No await may follow the read of the
        run's current jobs: the engine must attach the live play handle right after."""
        ...

    def finished(self, record: RunRecord) -> None:
        """The run's final record is stored (notify)."""
        ...


class Surface(Protocol):
    """Where the run shows: warnings, the live view and its controls."""

    def say(self, text: str) -> None: ...

    def open(self, plan: Plan, started: Started) -> AbstractAsyncContextManager[RunControls]: ...


def withhold_fork_secrets(plan: Plan, policy: ForkSecrets, surface: Surface) -> Plan:
    """A pull or merge request from a fork gets no secrets. With "skip", each job that
    declares secrets (its own or the pipeline's) is recorded skipped with the reason (and
    the jobs that depend on it are not run); with "omit" the jobs run without them. Any
    other run: `plan` as it is."""
    change = plan.event.change
    if change is None or not change.is_fork:
        return plan
    declaring = [p for p in plan.jobs if plan.pipeline.secrets or p.job.secrets]
    if not declaring:
        return plan
    if policy == "omit":
        surface.say(
            "warning: this pull request comes from a fork: its jobs run without secrets "
            '(fork_secrets = "omit")'
        )
        return plan
    reason = (
        "skipped: the job declares secrets and this pull request comes from a fork, which "
        'gets none (set fork_secrets = "omit" on the repo to run it without them)'
    )
    names = {p.name for p in declaring}
    jobs = tuple(replace(p, skip_reason=reason) if p.name in names else p for p in plan.jobs)
    return replace(plan, jobs=jobs)


def collect_secrets(
    plan: Plan, env: Mapping[str, str], reserved: frozenset[str], surface: Surface
) -> dict[str, str]:
    """The values of the secrets the plan's pipeline and jobs declare, read from `env`.
    Names in `reserved` (conveyor's own tokens) are refused: a pushed commit must not read
    them by declaring them. A declared secret that is not set is said once. A fork's pull
    request reads none (`withhold_fork_secrets`)."""
    from conveyor.secrets import secret_values

    change = plan.event.change
    if change is not None and change.is_fork:
        return {}
    names = dict.fromkeys(plan.pipeline.secrets)
    for planned in plan.jobs:
        names.update(dict.fromkeys(planned.job.secrets))
    refused = sorted(name for name in names if name in reserved)
    if refused:
        surface.say(
            f"warning: secrets {', '.join(refused)} are conveyor's own and are not given to "
            "pipelines (use other variables for the pipeline's secrets)"
        )
    allowed = [name for name in names if name not in reserved]
    secrets = secret_values(allowed, env)
    for name in allowed:
        if name not in secrets:
            surface.say(f"warning: secret {name} is not set in conveyor's environment")
    return secrets


def _gitlab_files(env: Mapping[str, str]) -> GitLabFiles | None:
    """The GitLab instance CONVEYOR_GITLAB_URL names (None: not set; the adapter is then
    not even imported: a run's start stays light)."""
    if "CONVEYOR_GITLAB_URL" not in env:
        return None
    from conveyor.config.remote import is_offline
    from conveyor.outbound.gitlab_files import from_env

    return from_env(env, offline=is_offline(env))


async def _load(
    checkout: Checkout,
    event: Event,
    allow: tuple[str, ...],
    *,
    strict: bool = False,
    env: Mapping[str, str] = EMPTY,
    inputs: Mapping[str, str] = EMPTY,
) -> Pipeline:
    """Load and validate the pipeline; problems and warnings name files as the user
    knows them (the checkout's own folder cut off)."""
    import asyncio
    from functools import partial

    from conveyor.config import load_pipeline
    from conveyor.config.remote import is_offline
    from conveyor.outbound.remote import HttpRemoteFetcher

    # The event decides GitLab's include:rules (predefined variables, changed files); remote
    # includes are fetched through the one outbound client (none in the offline mode), and
    # project/template/component ones from CONVEYOR_GITLAB_URL (cached; offline: the cache).
    load = partial(
        load_pipeline,
        event=event,
        changes_since=checkout.changes_since(),
        fetch=None if is_offline(env) else HttpRemoteFetcher(allow=allow),
        strict=strict,
        gitlab=_gitlab_files(env),
        inputs=inputs,
    )
    async with checkout.open_pipeline_file() as (path, prefix):
        try:
            pipeline = (
                await asyncio.to_thread(load, path) if checkout.loads_in_thread else load(path)
            )
        except ConfigError as exc:
            if not prefix:
                raise
            problems = [replace(p, file=p.file.replace(prefix, "")) for p in exc.problems]
            raise ConfigError(problems) from None
        except UsageError as exc:
            if not prefix:
                raise
            raise UsageError(str(exc).replace(prefix, "")) from None
    if prefix:
        warnings = tuple(w.replace(prefix, "") for w in pipeline.warnings)
        pipeline = replace(pipeline, warnings=warnings)
    return pipeline


async def execute_request(
    request: RunRequest, source: Source, start: RunStart, surface: Surface
) -> RunRecord | None:
    """The chain (module docstring); None when the workflow rules exclude the pipeline and
    `start` stops there."""
    from conveyor.config.problems import render_warning
    from conveyor.engine.scheduler import RunSetup, execute_run
    from conveyor.engine.selection import select_jobs
    from conveyor.outbound.remote import allow_entries
    from conveyor.plan import plan as plan_pipeline

    async with source.open(request) as checkout:
        allow = allow_entries(request.env, request.remote_include_allow)
        pipeline = await _load(
            checkout,
            checkout.event,
            allow,
            strict=request.strict,
            env=request.env,
            inputs=request.inputs,
        )
        for warning in pipeline.warnings:
            surface.say(render_warning(warning))
        event = await checkout.compare_changes(pipeline, checkout.event)
        plan = plan_pipeline(pipeline, event)
        if plan.workflow_excluded is not None and start.is_excluded(plan, plan.workflow_excluded):
            return None
        plan, selected = select_jobs(plan, request.jobs)
        plan = withhold_fork_secrets(plan, request.fork_secrets, surface)
        secrets = collect_secrets(plan, request.env, request.reserved_env, surface)
        workspaces = await checkout.workspaces_for(pipeline, plan.event.sha)
        played = request.play | selected
        started = await start.begin(plan, secrets, checkout, played)
        async with _open_logs(started) as logs, surface.open(plan, started) as controls:
            setup = RunSetup(
                store=started.store,
                logs=logs,
                workspace=checkout.directory,
                run_dir=started.run_dir,
                concurrency=default_concurrency(request.concurrency, pipeline),
                secrets=secrets,
                base_env=request.env,
                play=played,
                home=started.home,
                workspaces=workspaces,
                masked=_held_secrets(request),
                sandbox=request.sandbox,
                executor=request.executor,
            )
            record = await execute_run(
                plan, started.run, setup, resume=started.resume, controls=controls
            )
    start.finished(record)
    return record


def _held_secrets(request: RunRequest) -> tuple[str, ...]:
    """What of conveyor's own is masked in job output: the values it holds, and those of
    the names it reserves (a job that reads them some other way prints `[MASKED]`)."""
    reserved = (request.env[name] for name in sorted(request.reserved_env) if name in request.env)
    return (*request.held_secrets, *reserved)


@contextlib.asynccontextmanager
async def _open_logs(started: Started) -> AsyncIterator[RunLogs]:
    from conveyor.store.logfiles import RunLogs

    started.run_dir.mkdir(parents=True, exist_ok=True)
    logs = RunLogs(started.run_dir)
    try:
        yield logs
    finally:
        logs.close()


if TYPE_CHECKING:
    from conveyor.store.logfiles import RunLogs
