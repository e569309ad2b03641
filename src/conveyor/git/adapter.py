"""`GitCli`: the `Git` Protocol on the `git` program, one async subprocess per command.

Owns: `run_git`, the one way conveyor awaits a git process: `policy.git_environment` (safe
subset of our environment, no prompt, credentials only through `GitAuth`), its own session
(a timeout or a cancel kills the whole group: git and its helpers such as
`git-remote-https`), and a deadline from `policy.Timeouts` chosen by what the command does
(read, worktree, network). A command that fails or overruns raises `GitFailed` with git's last
stderr line; the questions that may have no answer (`head_commit`, `has_commit`,
`resolve_ref`, `commit_message`, `merge_base`) answer None/False instead. `describe` and
`compare_changes` hand the synchronous `git.describe` module (the CLI starts it before
asyncio is imported) to a worker thread: the same policy, one implementation.
Must not: plan, load pipelines or know about runs; never put a token in an argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from conveyor.git import describe as describing
from conveyor.git.base import GitFailed
from conveyor.git.policy import GitAuth, Timeouts, git_environment
from conveyor.model import EMPTY, Event, EventKind

__all__ = ["GitCli", "run_git"]

_Kind = Literal["read", "worktree", "network"]  # which of the named Timeouts applies
_HINTS: dict[_Kind, str] = {
    "read": "is git hanging on this repository?",
    "worktree": "is the work tree very large, or the disk slow?",
    "network": "raise server.git_timeout, or check the remote",
}


async def run_git(
    directory: Path,
    args: Sequence[str],
    *,
    timeout_s: float,
    hint: str,
    env: Mapping[str, str],
) -> str:
    """Stdout of `git -C directory ARGS`; `GitFailed` (named by `directory`) when git fails
    or outlives `timeout_s` (its process group is killed then, and when the await is
    cancelled). `hint` says how to fix an overrun."""
    where, verb = str(directory), args[0]
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            where,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            # Own group: a timeout kills git and its helpers. Always a session here, unlike
            # policy.start_git: uvloop's subprocess_exec (the server's) has no process_group.
            start_new_session=True,
        )
    except OSError as exc:
        raise GitFailed(where, f"git could not start ({exc.strerror}; is git installed?)") from None
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        await _kill(proc)
        raise GitFailed(where, f"git {verb} took longer than {timeout_s:g} s ({hint})") from None
    except BaseException:  # cancelled: git must not outlive its caller
        await _kill(proc)
        raise
    if proc.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        detail = said[-1] if said else f"exit {proc.returncode}"
        raise GitFailed(where, f"git {verb} failed ({detail})")
    return out.decode(errors="replace")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def _absolute(path: Path) -> Path:
    return path.absolute()  # no I/O: the working directory joined in front


def _paths(output: str) -> tuple[str, ...]:
    return tuple(path for path in output.split("\0") if path)


class GitCli:
    """The real `Git`. `env`: the environment whose safe subset git sees (default: ours)."""

    def __init__(
        self, timeouts: Timeouts | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.timeouts = timeouts or Timeouts()
        self._env = git_environment(env)

    async def _git(
        self,
        repository: Path,
        *args: str,
        kind: _Kind = "read",
        auth: GitAuth | None = None,
        discover: bool = False,
    ) -> str:
        """`git -C repository ARGS`. Unless `discover`, git may not look above
        `repository` for a repository (a missing mirror must not find the project's)."""
        env = dict(self._env)
        if auth is not None:
            env.update(auth.environment())
        if not discover:
            env["GIT_CEILING_DIRECTORIES"] = str(_absolute(repository).parent)
        timeouts = self.timeouts
        timeout_s = {
            "read": timeouts.read_s,
            "worktree": timeouts.worktree_s,
            "network": timeouts.network_s,
        }[kind]
        return await run_git(
            repository,
            args,
            timeout_s=timeout_s,
            hint=_HINTS[kind],
            env=env,
        )

    async def describe(
        self,
        directory: Path,
        *,
        kind: EventKind,
        ref: str | None = None,
        sha: str | None = None,
        variables: Mapping[str, str] = EMPTY,
    ) -> Event:
        return await asyncio.to_thread(
            describing.event_from_checkout,
            directory,
            kind=kind,
            ref=ref,
            sha=sha,
            variables=variables,
        )

    async def head_commit(self, directory: Path) -> str | None:
        try:
            out = await self._git(
                directory, "rev-parse", "--verify", "-q", "HEAD^{commit}", discover=True
            )
        except GitFailed:
            return None
        return out.strip() or None

    async def untracked_files(self, directory: Path) -> tuple[str, ...]:
        out = await self._git(
            directory, "ls-files", "-z", "--others", kind="worktree", discover=True
        )
        return _paths(out)

    async def compare_changes(
        self, directory: Path, sha: str, refs: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        return await asyncio.to_thread(describing.changes_since_refs, directory, sha, refs)

    async def clone_mirror(self, url: str, mirror: Path, *, auth: GitAuth | None) -> None:
        mirror.parent.mkdir(parents=True, exist_ok=True)
        await self._git(
            mirror.parent, "clone", "--mirror", "--quiet", "--", url, str(_absolute(mirror)),
            kind="network", auth=auth, discover=True,
        )  # fmt: skip

    async def fetch_mirror(self, mirror: Path, *, auth: GitAuth | None) -> None:
        await self._git(mirror, "fetch", "--prune", "origin", kind="network", auth=auth)

    async def has_commit(self, repository: Path, sha: str) -> bool:
        if sha.startswith("-"):
            return False
        try:
            await self._git(repository, "cat-file", "-e", f"{sha}^{{commit}}")
        except GitFailed:
            return False
        return True

    async def resolve_ref(self, repository: Path, ref: str) -> str | None:
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{commit}}"):
            with contextlib.suppress(GitFailed):
                out = await self._git(repository, "rev-parse", "--verify", "-q", candidate)
                return out.strip()
        return None

    async def commit_message(self, repository: Path, sha: str) -> str | None:
        if sha.startswith("-"):
            return None
        try:
            out = await self._git(repository, "log", "-1", "--format=%B", f"{sha}^{{commit}}", "--")
        except GitFailed:
            return None
        return out.rstrip("\n")

    async def merge_base(self, repository: Path, ref: str, sha: str) -> str | None:
        if ref.startswith("-") or sha.startswith("-"):
            return None
        try:
            out = await self._git(repository, "merge-base", f"refs/heads/{ref}", sha)
        except GitFailed:
            return None
        return out.strip() or None

    async def add_worktree(self, repository: Path, sha: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        await self._git(
            repository, "worktree", "add", "--detach", "--force", "--quiet", str(dest), sha,
            kind="worktree",
        )  # fmt: skip

    async def remove_worktree(self, repository: Path, dest: Path) -> None:
        await self._git(repository, "worktree", "remove", "--force", str(dest), kind="worktree")

    async def prune_worktrees(self, repository: Path) -> None:
        await self._git(repository, "worktree", "prune")

    async def changed_files(self, repository: Path, before: str, after: str) -> tuple[str, ...]:
        out = await self._git(repository, "diff", "--name-only", "-z", before, after, "--")
        return _paths(out)

    async def list_files(self, repository: Path, sha: str) -> tuple[str, ...]:
        out = await self._git(repository, "ls-tree", "-r", "-z", "--name-only", sha)
        return _paths(out)
