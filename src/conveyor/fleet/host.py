"""AttemptHost: one job attempt run on a worker, as the local executor would run it here.

A task from the broker carries an `AttemptSpec` (engine.executor) and an `Origin` (where
the code and the run's files come from). The host

    checkout   `<home>/mirrors/<repo>.git` through git.checkout.Checkouts (clone once, fetch
               when the commit is missing), a fresh worktree at the spec's exact sha in
               `<home>/attempts/<run>/<job>-<attempt>/project`
    rewrite    the spec's folders to the worker's: the workspace, CI_PROJECT_DIR and
               CI_BUILDS_DIR, and any value that named the server's job folder; the
               worker's safe environment (engine.env: PATH, HOME, …) under the spec's
    files in   artifacts and dotenv reports of `spec.artifacts_from` (fleet.files, from the
               server's files API; none without a server)
    run        engine.local.LocalExecutor: the same steps, time limits, masking, sandbox and
               environment rules as a local job; caches through the server's files API
    files out  the job's artifacts and dotenv report, back to the server
    clean up   the worktree and the attempt's folder, whatever happened

The worktree is already a private copy, so the executor runs the job in it directly (the
spec says `isolate`, so artifacts are restored as in an isolated run; a native pipeline's
jobs therefore see each other's files only as artifacts on workers). Several worker
processes may share one home: the mirror of a repo is changed under a file lock.
Output leaves masked (the spec's values, the clone token and the run token). Must not: talk
to the broker or decide retries (fleet.worker and the server's scheduler do).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from conveyor.clock import SYSTEM_CLOCK, Clock
from conveyor.engine.artifacts import artifacts_dir, safe_segment
from conveyor.engine.dotenv import dotenv_path, received_dotenv, write_dotenv
from conveyor.engine.env import safe_base
from conveyor.engine.executor import AttemptResult, AttemptSpec, OutputSink, WorkspaceSource
from conveyor.engine.local import LocalExecutor
from conveyor.engine.runner import LocalRunner, StepRunner
from conveyor.engine.workspace import JobWorkspaces
from conveyor.errors import ConveyorError, GitError
from conveyor.fleet.files import TRANSFER_RETRY, RemoteCaches, RunFiles, files_policy
from conveyor.git.checkout import Checkouts, GitAuth
from conveyor.masking import Masker
from conveyor.model import LogRecord, Status, Stream
from conveyor.outbound.base import HttpClient
from conveyor.outbound.retry import RetryPolicy

__all__ = [
    "AttemptHost",
    "Origin",
    "origin_from_dict",
    "origin_to_dict",
]

_LOCK_POLL_S = 0.05


class Origin(NamedTuple):
    """Where an attempt's code and files come from. `repo`: the repo's name as in the
    server's `[[repos]]` (it picks the worker's clone token); `clone_url`: never with
    credentials; `server_url`: the server's base URL as the worker reaches it; `token`: the
    run token for the files API (fleet.tokens); `provider`: github or gitlab, the user name
    a clone token is sent with ("" : a generic one)."""

    repo: str
    clone_url: str
    server_url: str
    token: str
    provider: str = ""

    def __repr__(self) -> str:
        return f"Origin(repo={self.repo!r}, clone_url={self.clone_url!r}, <token hidden>)"


def origin_to_dict(origin: Origin) -> dict[str, str]:
    """`origin` as JSON-compatible data (what the task carries)."""
    return origin._asdict()


def origin_from_dict(data: Mapping[str, Any]) -> Origin:
    """The Origin `origin_to_dict` made (a missing `provider` is "")."""
    return Origin(
        repo=str(data["repo"]),
        clone_url=str(data["clone_url"]),
        server_url=str(data["server_url"]),
        token=str(data["token"]),
        provider=str(data.get("provider", "")),
    )


class _Output:
    """The host's own system lines, numbered before and after the executor's."""

    __slots__ = ("clock", "line", "masker", "on_output", "spec")

    def __init__(self, spec: AttemptSpec, on_output: OutputSink, masker: Masker, clock: Clock):
        self.spec = spec
        self.on_output = on_output
        self.masker = masker
        self.clock = clock
        self.line = spec.first_line - 1

    def say(self, text: str) -> None:
        self.line += 1
        spec = self.spec
        record = LogRecord(
            self.clock.now(), spec.run_id, spec.job, "", Stream.SYSTEM, self.line,
            self.masker.mask(text),
        )  # fmt: skip
        self.on_output([record])

    def passed_on(self, records: Sequence[LogRecord]) -> None:
        if records:
            self.line = records[-1].n
        self.on_output(records)

    def result(self, status: Status, reason: str | None = None) -> AttemptResult:
        masked = self.masker.mask(reason) if reason else None
        return AttemptResult(status, (), self.line, reason=masked)


class AttemptHost:
    """Runs the attempts a worker takes (module docstring). `home`: the worker's folder
    (mirrors, attempts, caches); `name`: the worker's name, on every result;
    `clone_tokens`: repo name -> clone token; `env`: the worker's environment (default:
    this process's; jobs get its safe subset, git too); `runner`: how steps run (default:
    process groups here); `http`: the client of the server's files API (default: made on
    first use, closed by `aclose`), `files_retry` how hard it tries. An Origin without
    `server_url` moves no files (caches then stay in `<home>/cache`). `held_secrets`: the
    worker's own secrets (broker URL, clone tokens), masked in every job's output."""

    def __init__(
        self,
        home: Path,
        name: str,
        *,
        clone_tokens: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        env: Mapping[str, str] | None = None,
        git_timeout_s: float = 300.0,
        runner: StepRunner | None = None,
        http: HttpClient | None = None,
        files_retry: RetryPolicy = TRANSFER_RETRY,
        held_secrets: Sequence[str] = (),
    ) -> None:
        self.home = home
        self.name = name
        self.clone_tokens = dict(clone_tokens or {})
        self.clock = clock
        self.env = dict(os.environ if env is None else env)
        self.checkouts = Checkouts(home / "mirrors", timeout_s=git_timeout_s, env=self.env)
        self.runner = runner or LocalRunner()
        self.files_retry = files_retry
        self.held_secrets = tuple(value for value in held_secrets if value)
        self._http = http
        self._owns_http = http is None
        self._tasks: dict[tuple[str, str], asyncio.Task[AttemptResult]] = {}
        self._executors: dict[tuple[str, str], LocalExecutor] = {}

    # ------------------------------------------------------------ the Executor's shape

    async def run(self, spec: AttemptSpec, origin: Origin, on_output: OutputSink) -> AttemptResult:
        """Run `spec` from `origin` to its end, its time limit or a `cancel` message; the
        result names this worker."""
        key = (spec.run_id, spec.job)
        token = self.clone_tokens.get(origin.repo, "")
        held = (*self.held_secrets, *(v for v in (token, origin.token) if v))
        masker = Masker((*spec.mask, *held))
        output = _Output(spec, on_output, masker, self.clock)
        task = asyncio.ensure_future(self._run(spec, origin, output))
        self._tasks[key] = task
        try:
            result = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled: propagate
            result = output.result(Status.CANCELED)  # a cancel message before the steps
        finally:
            self._tasks.pop(key, None)
        return result._replace(worker=self.name)

    def cancel(self, run_id: str, job: str) -> None:
        """Stop the attempt of `job` (nothing when none runs here): its steps' process
        groups when they run, else its preparation; `run` then answers `canceled`."""
        executor = self._executors.get((run_id, job))
        if executor is not None:
            executor.cancel(run_id, job)
            return
        task = self._tasks.get((run_id, job))
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        """Close the files client this host made (when the worker stops)."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def discard_leftovers(self) -> None:
        """At a worker's start, before any attempt: remove the attempt folders a killed
        worker left behind and let the mirrors forget their worktrees. Never raises."""
        await self.checkouts.discard_worktrees(self.home / "attempts")

    # ------------------------------------------------------------ one attempt

    async def _run(self, spec: AttemptSpec, origin: Origin, output: _Output) -> AttemptResult:
        folder = self._folder(spec)
        await asyncio.to_thread(shutil.rmtree, folder, True)  # a retried task starts clean
        try:
            try:
                project, mirror = await self._checkout(spec, origin, folder / "project")
            except ConveyorError as error:
                output.say(str(error))
                return output.result(Status.FAILED, str(error))
            try:
                return await self._execute(spec, origin, output, folder, project)
            finally:
                await asyncio.shield(self._remove_worktree(origin.repo, mirror, project))
        finally:
            await asyncio.shield(asyncio.to_thread(_remove_attempt, folder))

    def _folder(self, spec: AttemptSpec) -> Path:
        name = safe_segment(f"{spec.job}-{spec.attempt}")
        return self.home / "attempts" / safe_segment(spec.run_id) / name

    async def _checkout(self, spec: AttemptSpec, origin: Origin, dest: Path) -> tuple[Path, Path]:
        sha = spec.workspace.sha
        if not sha or not origin.clone_url:
            raise GitError(
                f"checkout {origin.repo}: the task names no commit or no clone URL "
                "(the server sends both for a repository's run)"
            )
        token = self.clone_tokens.get(origin.repo)
        auth = GitAuth(origin.provider, token) if token else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self._mirror_lock(origin.repo):
            mirror = await self.checkouts.ensure_commit(origin.repo, origin.clone_url, sha, auth)
            await self.checkouts.add_worktree(origin.repo, mirror, sha, dest)
        return dest, mirror

    async def _remove_worktree(self, repo: str, mirror: Path, project: Path) -> None:
        async with self._mirror_lock(repo):
            await self.checkouts.remove_worktree(repo, mirror, project)

    async def _execute(
        self, spec: AttemptSpec, origin: Origin, output: _Output, folder: Path, project: Path
    ) -> AttemptResult:
        key = (spec.run_id, spec.job)
        run_dir = folder / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        files = self._files(spec, origin)
        caches = None
        if files is not None:
            refused = await _fetch(files, spec, run_dir)
            if refused is not None:
                output.say(refused)
                return output.result(Status.FAILED, refused)
            caches = RemoteCaches(files, folder / "transfers")
        local = self._moved(spec, project, first_line=output.line + 1)
        # The job's output is masked with the worker's secrets too (broker URL, tokens).
        local = local._replace(mask=output.masker.values)
        # The worktree is the attempt's own fresh copy: the executor runs in it as is.
        workspaces = JobWorkspaces(project, isolate=False, sha=local.workspace.sha, root=folder)
        executor = LocalExecutor(
            self.runner, workspaces, run_dir, self.home, clock=self.clock, caches=caches
        )
        self._executors[key] = executor
        try:
            result = await executor.run(local, output.passed_on)
        finally:
            self._executors.pop(key, None)
        output.line = max(result.last_line, output.line)
        for warning in caches.warnings if caches is not None else ():
            output.say(warning)
        if files is not None and result.status is not Status.CANCELED:
            refused = await _send(files, spec, run_dir)
            if refused is not None:
                output.say(refused)
                if result.status is Status.SUCCESS:  # as GitLab: a failed upload fails it
                    result = result._replace(status=Status.FAILED, exit_code=None)
                    result = result._replace(reason=output.masker.mask(refused))
        return result._replace(last_line=output.line)

    def _files(self, spec: AttemptSpec, origin: Origin) -> RunFiles | None:
        if not origin.server_url:
            return None
        if self._http is None:
            from conveyor.outbound.client import OutboundClient

            self._http = OutboundClient(files_policy())
        return RunFiles(
            origin.server_url, origin.token, spec.run_id, http=self._http, retry=self.files_retry
        )

    def _moved(self, spec: AttemptSpec, project: Path, *, first_line: int) -> AttemptSpec:
        """`spec` with the server's job folder replaced by `project` and the worker's safe
        environment under its own: the values the server inherited from its own
        environment (`spec.inherited`: PATH, HOME, … unless the pipeline set them) are the
        worker's, since the worker may be another kind of host."""
        old, new = spec.workspace.job_dir, str(project)
        base = safe_base(self.env)
        env = dict(base)
        for name, value in spec.env.items():
            if name in spec.inherited:
                continue  # the worker's own (in `base`), or none when it has none
            env[name] = value.replace(old, new) if old and old in value else value
        env["CI_PROJECT_DIR"] = env["CI_BUILDS_DIR"] = new
        workspace = WorkspaceSource(new, True, spec.workspace.sha, new)
        return spec._replace(workspace=workspace, env=env, first_line=first_line)

    @contextlib.asynccontextmanager
    async def _mirror_lock(self, repo: str) -> AsyncIterator[None]:
        """An exclusive lock of `repo`'s mirror shared by every process of this home (the
        Checkouts' own lock only orders the tasks of one process)."""
        locks = self.home / "mirrors" / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        handle = os.open(locks / f"{safe_segment(repo)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.checkouts.timeout_s * 2
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitError(
                            f"checkout {repo}: another attempt held the mirror for too long "
                            "(is a git process hung? raise the git timeout)"
                        ) from None
                    await asyncio.sleep(_LOCK_POLL_S)
            yield
        finally:
            os.close(handle)  # closing releases the lock


async def _fetch(files: RunFiles, spec: AttemptSpec, run_dir: Path) -> str | None:
    """The artifacts and dotenv variables of `spec.artifacts_from`, from the server into
    `run_dir` where the executor finds them; why not, when they could not be fetched."""
    try:
        for name in spec.artifacts_from:
            await files.fetch_artifacts(name, artifacts_dir(run_dir, name))
            variables = await files.fetch_dotenv(name)
            if variables:
                await asyncio.to_thread(write_dotenv, dotenv_path(run_dir, name), variables)
    except ConveyorError as error:
        return str(error)
    return None


async def _send(files: RunFiles, spec: AttemptSpec, run_dir: Path) -> str | None:
    """The job's artifacts and dotenv report, from `run_dir` to the server; why not, when
    they could not be sent."""
    artifacts = spec.artifacts
    if artifacts is None:
        return None
    try:
        source = artifacts_dir(run_dir, spec.job)
        if await asyncio.to_thread(source.is_dir):  # collected (when: agreed with the outcome)
            await files.send_artifacts(spec.job, source)
        if artifacts.dotenv:  # always: none saved replaces an earlier attempt's
            variables = await asyncio.to_thread(received_dotenv, run_dir, [spec.job])
            await files.send_dotenv(spec.job, variables)
    except ConveyorError as error:
        return str(error)
    return None


def _remove_attempt(folder: Path) -> None:
    """Remove an attempt's folder, and its run's folder once no attempt is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()
