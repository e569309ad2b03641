"""The folder a job runs in.

Shared (`Pipeline.isolate_jobs` False, native pipelines): every job runs in the project's
workspace itself. Isolated (True, GitLab's semantics): each job gets a clean checkout of the
commit and sees other jobs' files only as artifacts. When the workspace is a git repository
and the commit exists, that checkout is a `git worktree add --detach` (cheap: no clone, and
it is removed afterwards); otherwise it is a copy of the workspace without `.conveyor/` and
`.git/`. This module does not copy artifacts (artifacts.py) nor run steps (runner.py).
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["open_job_workspace"]

_GIT_TIMEOUT_S = 60.0
# Adding and removing worktrees edits shared files under .git: one at a time (per loop,
# since an asyncio.Lock belongs to the loop that first waits on it).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _worktree_lock() -> asyncio.Lock:
    return _LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def _git(workspace: Path, *args: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(workspace),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        return await asyncio.wait_for(proc.wait(), _GIT_TIMEOUT_S) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False


def _copy_tree(workspace: Path, target: Path, home: Path | None) -> None:
    home = home.resolve() if home is not None else None

    def ignore(folder: str, names: list[str]) -> list[str]:
        skipped = [n for n in names if n in (".git", ".conveyor")]
        if home is not None:
            skipped += [n for n in names if Path(folder, n).resolve() == home]
        return skipped

    shutil.copytree(workspace, target, ignore=ignore, symlinks=True)


@asynccontextmanager
async def open_job_workspace(
    workspace: Path,
    *,
    isolate: bool,
    sha: str,
    scratch: Path,
    home: Path | None = None,
) -> AsyncIterator[Path]:
    """Yield the folder a job runs in. `scratch` is a fresh path for an isolated checkout
    (removed afterwards); `home` is conveyor's state folder, never copied."""
    if not isolate:
        yield workspace
        return
    scratch.parent.mkdir(parents=True, exist_ok=True)
    is_worktree = False
    if sha and (workspace / ".git").exists():
        async with _worktree_lock():
            is_worktree = await _git(
                workspace, "worktree", "add", "--detach", "--force", str(scratch), sha
            )
    if not is_worktree:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        await asyncio.to_thread(_copy_tree, workspace, scratch, home)
    try:
        yield scratch
    finally:
        if is_worktree:
            async with _worktree_lock():
                await _git(workspace, "worktree", "remove", "--force", str(scratch))
        await asyncio.to_thread(shutil.rmtree, scratch, True)
