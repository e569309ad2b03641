"""conveyor's data: frozen dataclasses (ChangeRequest: a NamedTuple) and string enums shared
by every layer.

Three families live here:
  * the pipeline as written   — Pipeline, Job, Step, Need, Retry, Rule, Artifacts, Mark
  * what triggers and plans it — Event, Plan, PlannedJob, Excluded
  * what a run leaves behind  — RunRecord, JobRecord, StepRecord, LogRecord

Config parsers (native and GitLab) produce a Pipeline with defaults applied and matrices
expanded; the planner turns Pipeline + Event into a Plan; the engine turns a Plan into records.
This module is pure: no clock, environment, file or network. Mappings held by frozen classes
are never mutated after construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "EMPTY",
    "ArtifactWhen",
    "Artifacts",
    "Cache",
    "ChangeRequest",
    "Event",
    "EventKind",
    "Excluded",
    "Job",
    "JobRecord",
    "LogRecord",
    "Mark",
    "Need",
    "Pipeline",
    "Plan",
    "PlannedJob",
    "Retry",
    "Rule",
    "RunRecord",
    "Status",
    "Step",
    "StepRecord",
    "Stream",
    "When",
    "cache_key_problem",
]

EMPTY: Mapping[str, str] = {}


class Status(StrEnum):
    """Status of a run, a job or a step (DESIGN.md's words)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    MANUAL = "manual"

    @property
    def is_final(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)


class EventKind(StrEnum):
    PUSH = "push"
    TAG = "tag"
    MANUAL = "manual"
    SCHEDULE = "schedule"
    MERGE_REQUEST = "merge_request_event"  # GitLab's merge request pipelines
    PULL_REQUEST = "pull_request"  # GitHub's pull requests

    @property
    def is_change_request(self) -> bool:
        """A pull (GitHub) or merge (GitLab) request: the run is for its head commit."""
        return self is EventKind.MERGE_REQUEST or self is EventKind.PULL_REQUEST


class When(StrEnum):
    """When a job runs relative to the jobs it depends on (GitLab's `when`, native `status`).

    on_success: every dependency succeeded (allowed failures count as success).
    on_failure: at least one dependency failed.   always: regardless.
    manual: only when played.   never: not in the plan.   delayed: on_success after start_in.
    """

    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    MANUAL = "manual"
    NEVER = "never"
    DELAYED = "delayed"


class ArtifactWhen(StrEnum):
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"


class Stream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True, order=True)
class Mark:
    """Where something was written: 1-based line and column in `file`."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---------------------------------------------------------------- the pipeline as written


@dataclass(frozen=True, slots=True)
class Step:
    """One process. `run` is shell text executed as `<shell> <flags> -c run`."""

    name: str
    run: str
    timeout_s: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None


@dataclass(frozen=True, slots=True)
class Need:
    job: str
    optional: bool = False
    artifacts: bool = True


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy. `max` is the number of *retries* (max + 1 executions at most).

    A failed attempt is retried when `when` and `exit_codes` are both empty (any failure),
    or "failure" is in `when` and the step failed without timing out, or "timeout" is in
    `when` and it timed out, or its exit code is in `exit_codes`.
    """

    max: int = 0
    when: frozenset[str] = frozenset()
    exit_codes: frozenset[int] = frozenset()
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Artifacts:
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    when: ArtifactWhen = ArtifactWhen.ON_SUCCESS
    dotenv: tuple[str, ...] = ()  # GitLab artifacts:reports:dotenv files (engine/dotenv.py)


@dataclass(frozen=True, slots=True)
class Cache:
    """One GitLab `cache:` entry (engine/cache.py keeps it between runs). `key` may hold
    `$VARS` (expanded per job); with `key_files` the key is `key_prefix` + a hash of those
    files. `policy` is pull, push or pull-push; `when` says after which outcome to save."""

    key: str = "default"
    paths: tuple[str, ...] = ()
    key_files: tuple[str, ...] = ()
    key_prefix: str = ""
    policy: str = "pull-push"
    when: ArtifactWhen = ArtifactWhen.ON_SUCCESS
    untracked: bool = False
    fallback_keys: tuple[str, ...] = ()


def cache_key_problem(key: str) -> str | None:
    """Why GitLab refuses `key` as a cache key, or None when it is accepted: checked when a
    static key is parsed (config.gitlab.cache) and when an expanded one is used (engine)."""
    if "/" in key or "%2f" in key.lower():
        return 'cannot contain the "/" character (use - or _)'
    if key.lower().replace("%2e", ".") in (".", ".."):
        return 'cannot be "." or ".." (name the cache)'
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of a job's (or the workflow's) rules. All set conditions must hold for the
    rule to match; the first matching rule decides `when` and its overrides.

    events: EventKinds (None: any).  refs: fnmatch globs on Event.ref (None: any).
    changes / exists: path globs (None: not checked).  if_expr: GitLab CI/CD expression.
    compare_to: the ref `changes` compares with (GitLab `rules:changes:compare_to`; None:
    the push's own diff, Event.changed_files).  needs: replaces the job's needs when this
    rule matches (GitLab `rules:needs`; None: the job's own needs stay).
    """

    if_expr: str | None = None
    events: frozenset[EventKind] | None = None
    refs: tuple[str, ...] | None = None
    changes: tuple[str, ...] | None = None
    exists: tuple[str, ...] | None = None
    when: When = When.ON_SUCCESS
    allow_failure: bool | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    start_in_s: float | None = None
    mark: Mark | None = None
    compare_to: str | None = None
    needs: tuple[Need, ...] | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A concrete job (matrix/parallel already expanded; defaults already applied).

    needs: None means "wait for every job of earlier stages"; () means "start at once".
    dependencies: whose artifacts to fetch; None means the default (needs with artifacts,
    or every job of earlier stages when needs is None).
    rules: None means included with `when`; otherwise the first matching rule decides and
    no match excludes the job.
    allow_failure_exit_codes: when non-empty, only these exit codes count as allowed.
    unsupported: keywords accepted and recorded but not acted upon (GitLab `image`, …).
    inherit_variables: which pipeline-level variables (Pipeline.env and workflow rule
    variables) the job receives: True all, False none, or these names (GitLab
    `inherit:variables`).
    tags: the job's runner tags as written (`$VARS` expanded per attempt, engine.attempt):
    with workers they choose the queue (a worker must have every tag); the local executor
    ignores them.
    """

    name: str
    stage: str
    steps: tuple[Step, ...]
    mark: Mark
    needs: tuple[Need, ...] | None = None
    dependencies: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    timeout_s: float | None = None
    retry: Retry = Retry()
    allow_failure: bool = False
    allow_failure_exit_codes: frozenset[int] = frozenset()
    rules: tuple[Rule, ...] | None = None
    when: When = When.ON_SUCCESS
    start_in_s: float | None = None
    after_steps: tuple[Step, ...] = ()
    artifacts: Artifacts | None = None
    shell: str = "bash"
    workdir: str | None = None
    interruptible: bool = False
    resource_group: str | None = None
    environment: str | None = None
    base_name: str = ""  # name before matrix/parallel expansion ("" = same as name)
    matrix: Mapping[str, str] = field(default_factory=dict)
    node_index: int | None = None  # parallel: 1-based index, with node_total
    node_total: int | None = None
    unsupported: Mapping[str, object] = field(default_factory=dict)
    inherit_variables: bool | frozenset[str] = True
    caches: tuple[Cache, ...] = ()  # GitLab `cache` (engine/cache.py)
    tags: tuple[str, ...] = ()

    def inherits_variable(self, name: str) -> bool:
        """Whether the pipeline-level variable `name` reaches this job."""
        if isinstance(self.inherit_variables, bool):
            return self.inherit_variables
        return name in self.inherit_variables


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline. `flavor` is "native" (.conveyor.yml) or "gitlab".

    events: the native top-level `on` (None: every event).  workflow: GitLab
    `workflow: rules` (None: always runs).  isolate_jobs: every job gets its own clean
    checkout (GitLab semantics) instead of sharing the workspace.
    """

    name: str
    file: str
    jobs: tuple[Job, ...]
    flavor: str = "native"
    stages: tuple[str, ...] = ()
    events: frozenset[EventKind] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    fail_fast: bool = False
    concurrency: int | None = None
    workflow: tuple[Rule, ...] | None = None
    isolate_jobs: bool = False
    warnings: tuple[str, ...] = ()  # rendered "FILE:LINE:COL: message" lines
    # GitLab's workflow:auto_cancel:on_new_commit (conservative | interruptible | none);
    # None: not written (the repo's `auto_cancel` decides, runs.supersede).
    auto_cancel: str | None = None
    # Native `on: {push: {branches: […]}, pull_request: {branches: […]}}`: fnmatch globs per
    # event; a pull/merge request's target branch, any other event's ref must match one.
    event_branches: Mapping[EventKind, tuple[str, ...]] = field(default_factory=dict)

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)


# ---------------------------------------------------------------- triggering and planning


class ChangeRequest(NamedTuple):
    """The pull (GitHub) or merge (GitLab) request a run is for, as its webhook told it.
    Every text here comes from whoever opened the request: it reaches a job only as an
    environment variable, never as shell text.

    number: GitHub's PR number, GitLab's IID.  is_fork: the source branch lives in another
    repository (it gets no secrets).  diff_base_sha: the merge base of the target branch and
    the head, found from the checkout (None until then).

    A NamedTuple (`_replace`), not a frozen dataclass: every `conveyor run` imports this
    module, and a dataclass costs 0.4-0.7 ms to define against 0.1 ms (docs/benchmarks.md)."""

    number: int
    source_branch: str
    target_branch: str
    title: str = ""
    is_fork: bool = False
    source_repo: str = ""
    labels: tuple[str, ...] = ()
    url: str = ""
    diff_base_sha: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """What asked for a run. `ref` is the short branch or tag name ("main", "v1.2").

    changed_files: paths changed by the push (None: unknown, so `changes` rules hold).
    files: the repository's file list for `exists` rules (None: unknown, so they hold).
    variables: variables given by the user (`--var`, API, manual play): highest precedence.
    changes_by_ref: for GitLab `rules:changes:compare_to`, the paths changed between each
    ref the pipeline compares with and `sha` (git's `ref...sha`, from their merge base).
    None: not looked up, so such rules hold; a ref missing from the mapping is not a valid
    ref (the planner refuses the pipeline, as GitLab does).
    change: the pull or merge request of a `pull_request` / `merge_request_event` run
    (its `ref` is the source branch).
    """

    kind: EventKind = EventKind.PUSH
    ref: str = ""
    sha: str = ""
    before_sha: str | None = None
    repo: str = ""
    message: str = ""
    default_branch: str | None = None
    changed_files: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    changes_by_ref: Mapping[str, tuple[str, ...]] | None = None
    change: ChangeRequest | None = None

    @property
    def is_tag(self) -> bool:
        return self.kind is EventKind.TAG


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """A job that is in the plan. `depends_on` are the resolved DAG edges (needs, or every
    job of earlier stages); `artifacts_from` the jobs whose artifacts it receives.
    `when`, `allow_failure`, `variables` and `start_in_s` are after rules were applied."""

    job: Job
    depends_on: tuple[str, ...]
    artifacts_from: tuple[str, ...]
    when: When
    allow_failure: bool
    variables: Mapping[str, str] = field(default_factory=dict)
    start_in_s: float | None = None
    skip_reason: str | None = None  # withheld by the run (recorded `skipped` with it)

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True, slots=True)
class Excluded:
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The jobs that will run, in an order that respects every edge, and why the others
    will not. `workflow_excluded` is set (and `jobs` empty) when workflow rules said no."""

    pipeline: Pipeline
    event: Event
    jobs: tuple[PlannedJob, ...]
    excluded: tuple[Excluded, ...] = ()
    variables: Mapping[str, str] = field(default_factory=dict)
    workflow_excluded: str | None = None

    def job(self, name: str) -> PlannedJob:
        for planned in self.jobs:
            if planned.name == name:
                return planned
        raise KeyError(name)


# ---------------------------------------------------------------- what a run leaves behind


@dataclass(frozen=True, slots=True)
class StepRecord:
    name: str
    status: Status
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job of a run as of its latest attempt. `attempt` counts executions from 1;
    `worker` names where the latest attempt ran (`local` for the local executor; None
    while no attempt has run)."""

    name: str
    stage: str
    status: Status
    allow_failure: bool = False
    attempt: int = 0
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    needs: tuple[str, ...] = ()
    reason: str | None = None
    steps: tuple[StepRecord, ...] = ()
    worker: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run. `number` is a small integer assigned by the store (GitLab's CI_PIPELINE_ID);
    `trigger` is the Event as JSON-able data so a queued run can be planned after a restart."""

    run_id: str
    repo: str
    ref: str
    sha: str
    event: EventKind
    status: Status
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    number: int = 0
    pipeline_name: str = ""
    jobs: tuple[JobRecord, ...] = ()
    trigger: Mapping[str, object] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One output line (DESIGN.md log record). `n` counts lines per job from 1."""

    ts: datetime
    run_id: str
    job: str
    step: str
    stream: Stream
    n: int
    text: str
