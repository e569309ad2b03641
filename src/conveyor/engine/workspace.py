"""The folder a job runs in.

Shared (`Pipeline.isolate_jobs` False, native pipelines): every job runs in the project's
workspace itself. Isolated (True, GitLab's semantics): each job attempt gets its own clean
copy of the commit and sees other jobs' files only as artifacts. A run makes ONE pristine
checkout of the commit (a detached worktree at the sha, through the `Git` boundary, when
the workspace is a git repository and the commit exists), then every job gets a private
copy of it (real copies, `copy_file_range` where the file system offers it, never hard
links: a job must never change another's files), made in a worker thread so jobs do not
queue behind each other (a tree of at most 64 files and 1 MiB is copied on the event loop:
quicker than a thread).
Copies keep the pristine checkout's `.git` file, so read-only `git` commands (`rev-parse`,
`describe`, `log`) work in a job; the jobs of one run share that checkout's index. Without
git (or without the commit) the workspace itself is the source, copied without `.conveyor/`,
`.git/` and conveyor's home. Copies are deleted in the background after each job; `close()`
waits for them and removes the pristine checkout. This module does not copy artifacts
(artifacts.py) nor run steps (runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.git.base import Git

__all__ = ["JobWorkspaces", "copy_file", "open_job_workspace"]

_PRISTINE = "pristine"


def copy_file(src: str, dst: str) -> str:
    """Copy one file's bytes and mode (`shutil.copytree`'s copy_function): the kernel's
    `copy_file_range` (which may share blocks copy-on-write), else a plain read/write."""
    with open(src, "rb") as source, open(dst, "wb") as target:
        remaining = os.fstat(source.fileno()).st_size
        try:
            while remaining > 0:
                copied = os.copy_file_range(source.fileno(), target.fileno(), remaining)
                if copied == 0:
                    break
                remaining -= copied
        except OSError:  # no copy_file_range here (old kernel, some file systems)
            shutil.copyfileobj(source, target)
    shutil.copymode(src, dst)
    return dst


def _ignore_state(home: Path | None) -> Callable[[str, list[str]], list[str]]:
    home = home.resolve() if home is not None else None

    def ignore(folder: str, names: list[str]) -> list[str]:
        skipped = [n for n in names if n in (".git", ".conveyor")]
        if home is not None:
            skipped += [n for n in names if Path(folder, n).resolve() == home]
        return skipped

    return ignore


def _copy_tree(
    source: Path, target: Path, ignore: Callable[[str, list[str]], list[str]] | None
) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, ignore=ignore, symlinks=True, copy_function=copy_file)


# A tree this small is copied on the event loop: faster than handing it to a thread, which
# can wait up to the interpreter's switch interval (5 ms) for the GIL on a busy machine.
_SMALL_TREE_FILES = 64
_SMALL_TREE_BYTES = 1 << 20


def _is_small_tree(source: Path, ignore: Callable[[str, list[str]], list[str]] | None) -> bool:
    files = size = 0
    for folder, dirs, names in os.walk(source):
        skipped = set(ignore(folder, [*dirs, *names])) if ignore is not None else set()
        dirs[:] = [d for d in dirs if d not in skipped]
        for name in names:
            if name in skipped:
                continue
            files += 1
            with contextlib.suppress(OSError):
                size += Path(folder, name).lstat().st_size
            if files > _SMALL_TREE_FILES or size > _SMALL_TREE_BYTES:
                return False
    return True


class JobWorkspaces:
    """The job folders of one run (see the module docstring). Use `open(scratch)` per job
    attempt and `close()` once at the end of the run, even after a failure. `git`: the git
    to make the pristine checkout with (default: the git program)."""

    def __init__(
        self,
        workspace: Path,
        *,
        isolate: bool,
        sha: str,
        root: Path,
        home: Path | None = None,
        git: Git | None = None,
    ) -> None:
        self.workspace = workspace
        self.isolate = isolate
        self.sha = sha
        self._root = root
        self._home = home
        self._lock = asyncio.Lock()
        self._source: Path | None = None
        self._worktree: Path | None = None
        self._removals: set[asyncio.Task[None]] = set()
        self._is_small = False
        self._given_git = git

    @asynccontextmanager
    async def open(self, scratch: Path) -> AsyncIterator[Path]:
        """Yield the folder a job attempt runs in; `scratch` (a fresh path) is its private
        copy in an isolated run, deleted in the background afterwards."""
        if not self.isolate:
            yield self.workspace
            return
        source = await self._pristine()
        ignore = None if source == self._worktree else _ignore_state(self._home)
        if self._is_small:
            copying: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            copying.set_result(None)
            try:
                _copy_tree(source, scratch, ignore)
                yield scratch
            finally:
                self._remove_later(scratch, after=copying)
            return
        # Shielded: a cancelled job must not leave a copy still being written when the
        # removal starts; the removal waits for it instead.
        copying = asyncio.ensure_future(asyncio.to_thread(_copy_tree, source, scratch, ignore))
        try:
            await asyncio.shield(copying)
            yield scratch
        finally:
            self._remove_later(scratch, after=copying)

    async def prepare(self) -> None:
        """Make the pristine checkout now (the first job would otherwise make it): the CLI
        starts it before opening the store, so git works while the store's libraries load."""
        if self.isolate:
            await self._pristine()

    async def _pristine(self) -> Path:
        async with self._lock:
            if self._source is None:
                source = await self._checkout()
                ignore = None if source == self._worktree else _ignore_state(self._home)
                self._is_small = await asyncio.to_thread(_is_small_tree, source, ignore)
                self._source = source
        return self._source

    def _git(self) -> Git:
        """The Git given, else GitCli: imported only by a run that checks out (isolated jobs)."""
        if self._given_git is None:
            from conveyor.git.adapter import GitCli

            self._given_git = GitCli()
        return self._given_git

    async def _checkout(self) -> Path:
        from conveyor.git.base import GitFailed

        if self.sha and (self.workspace / ".git").exists():
            target = self._root / _PRISTINE
            self._root.mkdir(parents=True, exist_ok=True)
            try:
                await self._git().add_worktree(self.workspace, self.sha, target)
            except GitFailed:  # not a commit of this repository: copy the folder instead
                await asyncio.to_thread(shutil.rmtree, target, True)
            else:
                self._worktree = target
                return target
        return self.workspace

    def _remove_later(self, path: Path, *, after: asyncio.Future[None]) -> None:
        task = asyncio.get_running_loop().create_task(_remove_after(path, after))
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def close(self) -> None:
        """Wait for the copies to be deleted and remove the pristine checkout."""
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)
        if self._worktree is not None:
            from conveyor.git.base import GitFailed

            if not await asyncio.to_thread(_drop_worktree, self.workspace, self._worktree):
                with contextlib.suppress(GitFailed):  # the folder goes below either way
                    await self._git().remove_worktree(self.workspace, self._worktree)
            await asyncio.to_thread(shutil.rmtree, self._worktree, True)
            self._worktree = None
        self._source = None
        with contextlib.suppress(OSError):
            self._root.rmdir()  # only when empty: nothing else of the run lives there


def _drop_worktree(workspace: Path, worktree: Path) -> bool:
    """Remove a detached worktree without a git process, as `git worktree remove --force`
    does: its folder and its administrative folder `.git/worktrees/<id>` (named by the
    worktree's `.git` file). False when the layout is not the expected one (then git
    removes it)."""
    try:
        pointer = (worktree / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    admin = Path(pointer.removeprefix("gitdir:").strip())
    admin_root = (workspace / ".git" / "worktrees").resolve()
    if not pointer.startswith("gitdir:") or admin.resolve().parent != admin_root:
        return False
    shutil.rmtree(worktree, ignore_errors=True)
    shutil.rmtree(admin, ignore_errors=True)
    return True


async def _remove_after(path: Path, copying: asyncio.Future[None]) -> None:
    with contextlib.suppress(Exception):
        await copying
    await asyncio.to_thread(shutil.rmtree, path, True)


@asynccontextmanager
async def open_job_workspace(
    workspace: Path,
    *,
    isolate: bool,
    sha: str,
    scratch: Path,
    home: Path | None = None,
) -> AsyncIterator[Path]:
    """One job folder outside a run (its own pristine checkout, removed on exit): yields
    what `JobWorkspaces.open(scratch)` yields. `home` is conveyor's state folder."""
    workspaces = JobWorkspaces(
        workspace, isolate=isolate, sha=sha, root=scratch.parent / f".{scratch.name}", home=home
    )
    try:
        async with workspaces.open(scratch) as where:
            yield where
    finally:
        await workspaces.close()
