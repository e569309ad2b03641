"""Where a run's files come from: the `Source`s of the run chain (runs.chain).

- `FolderSource` (`conveyor run`): the project folder as it is. Its git commands (started
  before asyncio and the engine were imported, `git.describe`) give the event; the
  pristine checkout of an isolated (GitLab) pipeline starts before the file is parsed and
  the store opened, so git works meanwhile.
- `RunFolderSource` (`conveyor play`): the project folder at a stored run's commit. A
  pipeline sharing the folder is played only while the folder's HEAD is the run's commit;
  an isolated one reads its pipeline file from a pristine copy of that commit (HEAD may
  have moved on); problems name files relative to the folder either way.
- `MirrorSource` (the server): a detached worktree of the run's sha from the repository's
  bare mirror; changed files between before and after; `compare_to` diffs saved in the run
  folder the first time, so a resumed run plans as it was first planned.

Must not: plan, record or execute (the chain does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import UsageError
from conveyor.model import Event, Pipeline

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import ChangesSince
    from conveyor.engine.workspace import JobWorkspaces
    from conveyor.git.checkout import Checkouts, GitAuth
    from conveyor.git.describe import CheckoutQuery
    from conveyor.runs.chain import RunRequest

__all__ = ["FolderSource", "MirrorSource", "RunFolderSource"]

_CHANGES_FILE = "changes_by_ref.json"


def _workspaces(directory: Path, *, isolate: bool, sha: str, run_dir: Path) -> JobWorkspaces:
    from conveyor.engine.workspace import JobWorkspaces

    home = run_dir.parent.parent
    return JobWorkspaces(directory, isolate=isolate, sha=sha, root=run_dir / "work", home=home)


class _FolderCheckout:
    """The project folder (`FolderSource`, `RunFolderSource`)."""

    loads_in_thread = False
    __slots__ = ("directory", "event", "is_play", "pipeline_file", "run_dir", "workspaces")

    def __init__(
        self,
        directory: Path,
        event: Event,
        pipeline_file: Path,
        run_dir: Path,
        workspaces: JobWorkspaces,
        is_play: bool = False,
    ) -> None:
        self.directory = directory
        self.event = event
        self.pipeline_file = pipeline_file
        self.run_dir = run_dir
        self.workspaces = workspaces
        self.is_play = is_play

    @contextlib.asynccontextmanager
    async def open_pipeline_file(self) -> AsyncIterator[tuple[Path, str]]:
        inside = _path_inside(self.directory, self.pipeline_file)
        if not self.is_play or not self.workspaces.isolate or inside is None:
            yield self.pipeline_file, ""  # read as it is now
            return
        scratch = self.run_dir / "work" / "play-pipeline"
        async with self.workspaces.open(scratch) as copy:
            committed = copy / inside
            if not committed.is_file():  # not in that commit: the run read the folder's
                yield self.pipeline_file, ""
            else:
                yield committed, f"{copy}{os.sep}"

    def changes_since(self) -> ChangesSince:
        from conveyor.git.describe import changes_lookup

        return changes_lookup(self.directory, self.event.sha)

    async def compare_changes(self, pipeline: Pipeline, event: Event) -> Event:
        from conveyor.git.describe import add_compare_changes
        from conveyor.plan import compare_to_refs

        return add_compare_changes(self.directory, event, compare_to_refs(pipeline, event))

    async def workspaces_for(self, pipeline: Pipeline, sha: str) -> JobWorkspaces:
        current = self.workspaces
        if (current.isolate, current.sha) != (pipeline.isolate_jobs, sha):
            # Started on another guess: finish, drop, start again.
            if not self.is_play:
                await current.prepare()
            await current.close()
            current = _workspaces(
                self.directory, isolate=pipeline.isolate_jobs, sha=sha, run_dir=self.run_dir
            )
            self.workspaces = current
        if self.is_play and not pipeline.isolate_jobs:
            await _check_head(self.directory, self.event.sha, self.run_dir.name)
        return current


class FolderSource:
    """`conveyor run`: the folder as it is, described by `query` (started by the caller)."""

    __slots__ = ("directory", "pipeline_file", "query", "run_dir")

    def __init__(
        self, directory: Path, query: CheckoutQuery, pipeline_file: Path, run_dir: Path
    ) -> None:
        self.directory = directory
        self.query = query
        self.pipeline_file = pipeline_file
        self.run_dir = run_dir

    @contextlib.asynccontextmanager
    async def open(self, request: RunRequest) -> AsyncIterator[_FolderCheckout]:
        from conveyor.config import is_gitlab_file

        try:
            event = self.query.event(request.event.variables)
        finally:
            self.query.close()
        workspaces = _workspaces(
            self.directory,
            isolate=is_gitlab_file(self.pipeline_file),  # the files read as GitLab's
            sha=event.sha,
            run_dir=self.run_dir,
        )
        checkout = _FolderCheckout(
            self.directory, event, self.pipeline_file, self.run_dir, workspaces
        )
        early = asyncio.ensure_future(workspaces.prepare())
        await asyncio.sleep(0)  # runs prepare() up to the start of its git process
        try:
            yield checkout
        finally:
            with contextlib.suppress(Exception):  # a failed checkout fails the jobs instead
                await early
            await checkout.workspaces.close()  # execute_run closes them too; twice is fine


class RunFolderSource:
    """`conveyor play`: the folder at the stored run's commit (module docstring)."""

    __slots__ = ("directory", "pipeline_file", "run_dir")

    def __init__(self, directory: Path, pipeline_file: Path, run_dir: Path) -> None:
        self.directory = directory
        self.pipeline_file = pipeline_file
        self.run_dir = run_dir

    @contextlib.asynccontextmanager
    async def open(self, request: RunRequest) -> AsyncIterator[_FolderCheckout]:
        from conveyor.config import is_gitlab_file
        from conveyor.git.describe import event_from_checkout

        stored = request.event
        described = event_from_checkout(
            self.directory, kind=stored.kind, ref=stored.ref or None, sha=stored.sha or None
        )
        event = replace(stored, changed_files=described.changed_files, files=described.files)
        isolate = is_gitlab_file(self.pipeline_file)
        workspaces = _workspaces(
            self.directory, isolate=isolate, sha=event.sha, run_dir=self.run_dir
        )
        checkout = _FolderCheckout(
            self.directory, event, self.pipeline_file, self.run_dir, workspaces, is_play=True
        )
        try:
            yield checkout
        finally:
            await checkout.workspaces.close()


async def _check_head(directory: Path, sha: str, run_id: str) -> None:
    """UsageError when the folder's HEAD is not the run's commit (shared workspaces)."""
    from conveyor.git.adapter import GitCli
    from conveyor.git.policy import NULL_SHA

    if sha in ("", NULL_SHA):
        return  # the run was not made from a git commit: nothing to compare
    head = await GitCli().head_commit(directory)
    if head is not None and head != sha:
        short = sha[:12]
        raise UsageError(
            f"run {run_id}: the project folder is at commit {head[:12]}, not the run's "
            f"{short}; its jobs share this folder, so the played job would run other files "
            f"(check out the run's commit: `git switch --detach {short}`, or start a new run)"
        )


def _path_inside(directory: Path, file: Path) -> Path | None:
    """`file` relative to the project folder `directory`; None when it lies outside."""
    path = file if file.is_absolute() else directory / file
    try:
        return path.resolve().relative_to(directory.resolve())
    except ValueError:
        return None


class _MirrorCheckout:
    """A worktree of the run's sha (`MirrorSource`)."""

    loads_in_thread = True
    __slots__ = ("directory", "event", "pipeline_file", "run_dir")

    def __init__(self, directory: Path, event: Event, pipeline_file: Path, run_dir: Path) -> None:
        self.directory = directory
        self.event = event
        self.pipeline_file = pipeline_file
        self.run_dir = run_dir

    @contextlib.asynccontextmanager
    async def open_pipeline_file(self) -> AsyncIterator[tuple[Path, str]]:
        yield self.pipeline_file, f"{self.directory}{os.sep}"

    def changes_since(self) -> ChangesSince:
        from conveyor.git.describe import changes_lookup

        return changes_lookup(self.directory, self.event.sha)

    async def compare_changes(self, pipeline: Pipeline, event: Event) -> Event:
        return await asyncio.to_thread(
            _saved_compare_changes, self.directory, pipeline, event, self.run_dir
        )

    async def workspaces_for(self, pipeline: Pipeline, sha: str) -> JobWorkspaces | None:
        return None  # the engine makes them from the worktree


class MirrorSource:
    """The server: the repository's mirror, a worktree of the run's sha."""

    __slots__ = ("auth", "checkouts", "clone_url", "repo", "run_dir", "worktree")

    def __init__(
        self,
        checkouts: Checkouts,
        repo: str,
        clone_url: str,
        auth: GitAuth | None,
        worktree: Path,
        run_dir: Path,
    ) -> None:
        self.checkouts = checkouts
        self.repo = repo
        self.clone_url = clone_url
        self.auth = auth
        self.worktree = worktree
        self.run_dir = run_dir

    @contextlib.asynccontextmanager
    async def open(self, request: RunRequest) -> AsyncIterator[_MirrorCheckout]:
        from conveyor.config import find_pipeline_file

        event, checkouts, repo = request.event, self.checkouts, self.repo
        if not self.clone_url:
            raise UsageError(f"run: repository {repo!r} is not configured")
        mirror = await checkouts.ensure_commit(repo, self.clone_url, event.sha, self.auth)
        try:
            await checkouts.add_worktree(repo, mirror, event.sha, self.worktree)
            before = event.before_sha
            if event.change is not None:
                # A merge request's changes are from where it forked off its target, as
                # GitLab compares them (`rules:changes`), not from the previous push.
                base = await checkouts.merge_base(
                    repo, mirror, event.change.target_branch, event.sha
                )
                change = event.change._replace(diff_base_sha=base)
                event, before = replace(event, change=change), base
            changed = await checkouts.changed_files(repo, mirror, before, event.sha)
            files = await checkouts.list_files(repo, mirror, event.sha)
            event = replace(event, changed_files=changed, files=files)
            path = find_pipeline_file(self.worktree, request.pipeline_file)
            yield _MirrorCheckout(self.worktree, event, path, self.run_dir)
        finally:
            if self.worktree.exists():
                await asyncio.shield(checkouts.remove_worktree(repo, mirror, self.worktree))


def _saved_compare_changes(worktree: Path, pipeline: Pipeline, event: Event, folder: Path) -> Event:
    """`event` with the `rules:changes:compare_to` diffs saved when the run was first
    planned; computed (the mirror's branches and tags, diffed in the worktree) and saved the
    first time. A saved file that cannot be read is computed again."""
    import orjson
    import structlog

    from conveyor.git.describe import add_compare_changes
    from conveyor.plan import compare_to_refs

    saved = folder / _CHANGES_FILE
    try:
        data = orjson.loads(saved.read_bytes())
    except FileNotFoundError:
        data = None
    except (OSError, orjson.JSONDecodeError) as exc:
        structlog.get_logger(__name__).warning(
            "run.compare_changes_unreadable", path=str(saved), error=str(exc)
        )
        data = None
    if isinstance(data, dict):
        changes = {str(ref): tuple(str(p) for p in paths) for ref, paths in data.items()}
        return replace(event, changes_by_ref=changes)
    event = add_compare_changes(worktree, event, compare_to_refs(pipeline, event))
    if event.changes_by_ref is not None:
        folder.mkdir(parents=True, exist_ok=True)
        partial = saved.with_suffix(".partial")
        partial.write_bytes(orjson.dumps({k: list(v) for k, v in event.changes_by_ref.items()}))
        partial.replace(saved)  # whole or absent, even if the server dies mid-write
    return event
