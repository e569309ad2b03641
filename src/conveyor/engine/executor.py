"""The Executor boundary: where one attempt of one job runs.

The scheduler decides *whether* and *when* a job runs (status.py); an `Executor` runs one
attempt of it and answers how it went. The boundary is shaped for remote execution (a
worker on another host), so everything crossing it is data:

    spec = AttemptSpec(...)                      # serialisable: attempt_spec_to_dict / _from_dict
                                                 # (and the result: attempt_result_to_dict / …)
    result = await executor.run(spec, on_output) # on_output(batch of LogRecords), masked, numbered
    executor.cancel(spec.run_id, spec.job)       # cancel is a message, not a shared object

- The spec says what to run (steps and after_steps with their shell and limits), with which
  environment (the job's, built by the scheduler; step env, event variables and secrets are
  layered per step by the executor with `engine.env.step_environment`), where (the
  workspace source: the project folder shared by every job, or a pristine checkout of a
  commit copied per attempt), which artifacts, caches and dotenv reports come in and go
  out, its time limit (seconds from the attempt's start: a monotonic deadline does not
  cross hosts) and its sandbox policy (engine.sandbox: every executor applies it).
- Output comes back as batches of `LogRecord`s, already masked and numbered from
  `spec.first_line`; the result says the last number used, so the scheduler's own lines
  (retries, skips) go on from there.
- `cancel` ends the attempt (its process groups are stopped) and `run` then returns a
  result with status `canceled` and the steps as far as they got. Cancelling the task that
  awaits `run` also stops the attempt, and CancelledError propagates.

The messages are NamedTuples: immutable, plain data (`_asdict`), and about 7x cheaper to
define than frozen dataclasses, which matters on `conveyor run`'s start-up (Python 3.11
compiles every generated dataclass method; docs/benchmarks.md).

Implementations: `engine.local.LocalExecutor` (process groups on this host) and the fake in
tests/fakes/executor.py; tests/integration/engine/test_executor_conformance.py holds both to
this contract. This module defines data and the Protocol only: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, NamedTuple, Protocol, runtime_checkable

from conveyor.engine.sandbox import NO_SANDBOX, Sandbox
from conveyor.model import (
    EMPTY,
    Artifacts,
    ArtifactWhen,
    Cache,
    LogRecord,
    Status,
    Step,
    StepRecord,
)

__all__ = [
    "AttemptResult",
    "AttemptSpec",
    "Executor",
    "OutputSink",
    "Placement",
    "WorkspaceSource",
    "attempt_result_from_dict",
    "attempt_result_to_dict",
    "attempt_spec_from_dict",
    "attempt_spec_to_dict",
]

# Receives one batch of masked, numbered output records of one attempt.
OutputSink = Callable[[Sequence[LogRecord]], None]


class WorkspaceSource(NamedTuple):
    """Where an attempt's files come from. `isolate` false: the attempt runs in `directory`
    itself (shared by every job of the run). `isolate` true: it runs in `job_dir`, a fresh
    copy of a pristine checkout of `sha` from the repository at `directory` (the folder
    itself when there is no commit). `job_dir` is also CI_PROJECT_DIR in the job's env."""

    directory: str
    isolate: bool
    sha: str
    job_dir: str


class AttemptSpec(NamedTuple):
    """One attempt of one job, as data (module docstring). `secrets`: the job's declared
    secrets (name -> value, added to each step's env); `mask`: every value to mask in its
    output (the run's secrets and the server's own). `sandbox`: how its steps are confined
    (engine.sandbox; the executor adds its own home to the hidden folders).
    `artifacts_from`: the jobs whose saved artifacts (isolated workspaces) and dotenv
    reports it receives; `artifacts`: what it saves afterwards. `tags`: the job's runner
    tags, variables expanded: they choose where a remote executor runs it (a local one
    ignores them). `inherited`: the names in `env` whose values are the submitting host's
    own (its safe base: PATH, HOME, …, engine.env), which a remote host replaces with its
    own."""

    run_id: str
    job: str
    attempt: int
    first_line: int
    workspace: WorkspaceSource
    env: Mapping[str, str]
    steps: tuple[Step, ...]
    after_steps: tuple[Step, ...] = ()
    shell: str = "bash"
    workdir: str | None = None
    timeout_s: float = 3600.0
    event_variables: Mapping[str, str] = EMPTY
    secrets: Mapping[str, str] = EMPTY
    mask: tuple[str, ...] = ()
    artifacts_from: tuple[str, ...] = ()
    artifacts: Artifacts | None = None
    caches: tuple[Cache, ...] = ()
    sandbox: Sandbox = NO_SANDBOX
    tags: tuple[str, ...] = ()
    inherited: tuple[str, ...] = ()


class AttemptResult(NamedTuple):
    """How an attempt went. `status` is success, failed or canceled; for a failure
    `exit_code` (None when killed for its time limit, `timed_out`, or when it could not
    start) and `reason` (masked) say why. `last_line` is the number of the attempt's last
    output line (`first_line - 1` when it wrote none); `worker` names where it ran."""

    status: Status
    steps: tuple[StepRecord, ...]
    last_line: int
    exit_code: int | None = None
    timed_out: bool = False
    reason: str | None = None
    worker: str = "local"


class Executor(Protocol):
    """Runs attempts (module docstring); one instance serves one run."""

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        """Run `spec` to its end, its time limit, or a `cancel` message."""
        ...

    def cancel(self, run_id: str, job: str) -> None:
        """Send the message that stops the running attempt of `job` (nothing when none
        runs); its `run` then returns a `canceled` result."""
        ...


@runtime_checkable
class Placement(Protocol):
    """An Executor that places attempts on workers it may have to wait for (the fleet's
    CeleryExecutor). The scheduler asks it before each attempt; meanwhile the job stays
    `pending` with the reason it is given (`no worker for tags [gpu]`), and the running
    record names the worker as soon as the attempt starts there."""

    async def place(self, spec: AttemptSpec, on_waiting: Callable[[str], None]) -> str | None:
        """Wait until a worker can take `spec`, calling `on_waiting(reason)` when it has to
        wait; None when it can run, else why it never will (`stuck_or_timeout_failure`)."""
        ...

    def watch_start(self, spec: AttemptSpec, on_start: Callable[[str], None]) -> None:
        """Have `on_start(worker)` called once the attempt of `spec`, about to be `run`,
        starts on a worker (the job record then names it while it runs)."""
        ...


# ---------------------------------------------------------------- serialisation


def attempt_spec_to_dict(spec: AttemptSpec) -> dict[str, Any]:
    """`spec` as JSON-compatible data (what a broker carries)."""
    data = spec._asdict()
    data["workspace"] = spec.workspace._asdict()
    data["env"] = dict(spec.env)
    data["event_variables"] = dict(spec.event_variables)
    data["secrets"] = dict(spec.secrets)
    for key in ("steps", "after_steps"):
        data[key] = [_step_dict(step) for step in getattr(spec, key)]
    if spec.artifacts is not None:
        data["artifacts"] = {**asdict(spec.artifacts), "when": str(spec.artifacts.when)}
    data["caches"] = [{**asdict(cache), "when": str(cache.when)} for cache in spec.caches]
    data["sandbox"] = spec.sandbox._asdict()
    return data


def _step_dict(step: Step) -> dict[str, Any]:
    return {**asdict(step), "env": dict(step.env)}


def attempt_spec_from_dict(data: Mapping[str, Any]) -> AttemptSpec:
    """The spec `attempt_spec_to_dict` made (lists become tuples, enums come back)."""
    values = dict(data)
    values["workspace"] = WorkspaceSource(**values["workspace"])
    for key in ("env", "event_variables", "secrets"):
        values[key] = dict(values.get(key, {}))
    for key in ("steps", "after_steps"):
        values[key] = tuple(Step(**step) for step in values.get(key, ()))
    artifacts = values.get("artifacts")
    if artifacts is not None:
        values["artifacts"] = Artifacts(
            paths=tuple(artifacts["paths"]),
            exclude=tuple(artifacts["exclude"]),
            when=ArtifactWhen(artifacts["when"]),
            dotenv=tuple(artifacts["dotenv"]),
        )
    values["caches"] = tuple(_cache(cache) for cache in values.get("caches", ()))
    values["sandbox"] = Sandbox(**values.get("sandbox", {}))
    for key in ("mask", "artifacts_from", "tags", "inherited"):
        values[key] = tuple(values.get(key, ()))
    return AttemptSpec(**values)


def _cache(data: Mapping[str, Any]) -> Cache:
    return Cache(
        key=data["key"],
        paths=tuple(data["paths"]),
        key_files=tuple(data["key_files"]),
        key_prefix=data["key_prefix"],
        policy=data["policy"],
        when=ArtifactWhen(data["when"]),
        untracked=data["untracked"],
        fallback_keys=tuple(data["fallback_keys"]),
    )


def attempt_result_to_dict(result: AttemptResult) -> dict[str, Any]:
    """`result` as JSON-compatible data (what a worker sends back)."""
    from conveyor.records import step_to_dict

    data = result._asdict()
    data["status"] = str(result.status)
    data["steps"] = [step_to_dict(step) for step in result.steps]
    return data


def attempt_result_from_dict(data: Mapping[str, Any]) -> AttemptResult:
    """The result `attempt_result_to_dict` made."""
    from conveyor.records import parse_ts

    values = dict(data)
    values["status"] = Status(values["status"])
    values["steps"] = tuple(
        StepRecord(
            name=step["name"],
            status=Status(step["status"]),
            exit_code=step["exit_code"],
            started_at=parse_ts(step["started_at"]),
            finished_at=parse_ts(step["finished_at"]),
        )
        for step in values.get("steps", ())
    )
    return AttemptResult(**values)
