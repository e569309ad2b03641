"""Checkouts for server runs: a bare mirror per repo and a clean worktree per run.

`Checkouts` keeps `<home>/mirrors/<repo>.git` (`git clone --mirror`, then `git fetch`), adds
a detached worktree at the run's exact sha, lists the files a push changed (before..after)
and the files of the commit (for `exists` rules), reads a commit's message (`[skip ci]` of a
delivery that carried none), and removes the worktree after the run
(`config.find_pipeline_file` finds the pipeline file in it). Every git command goes through
one `Git` (by default `GitCli` with `server.git_timeout` for every git call), so
credentials reach git only through `GitAuth` in the environment, never in a URL or an
argument, and every command has a deadline and its own process group. A failure is a
`GitError` naming the repo and what git said (`checkout acme/app: git clone failed (…)`);
it fails the run, never the server. It must not plan or run jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog

from conveyor.errors import GitError
from conveyor.git.adapter import GitCli
from conveyor.git.base import Git, GitFailed
from conveyor.git.policy import GitAuth, Timeouts

__all__ = ["Checkouts", "GitAuth"]

log = structlog.get_logger(__name__)

_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@contextlib.contextmanager
def _about(repo: str) -> Iterator[None]:
    """Name `repo` (not the mirror's path) in the GitError of a failed git command."""
    try:
        yield
    except GitFailed as error:
        raise GitError(f"checkout {repo}: {error.reason}") from None


class Checkouts:
    """Mirrors under `mirrors_dir`; one lock per mirror serialises fetches and worktree edits.
    `timeout_s` bounds each git command; `env` is the environment whose safe subset git
    sees (default: ours); `git` replaces the git program (tests)."""

    def __init__(
        self,
        mirrors_dir: Path,
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        git: Git | None = None,
    ) -> None:
        self.mirrors_dir = mirrors_dir
        self.timeout_s = timeout_s
        every_call = Timeouts(read_s=timeout_s, worktree_s=timeout_s, network_s=timeout_s)
        self.git: Git = git or GitCli(every_call, env=env)
        self._locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, repo: str) -> Path:
        return self.mirrors_dir / (repo.replace("/", "__") + ".git")

    async def fetch(self, repo: str, clone_url: str, auth: GitAuth | None = None) -> Path:
        """Create or update the mirror of `repo`; returns its path."""
        mirror = self.mirror_path(repo)
        async with self._lock(repo):
            with _about(repo):
                if (mirror / "HEAD").exists():
                    await self.git.fetch_mirror(mirror, auth=auth)
                else:
                    await self.git.clone_mirror(clone_url, mirror, auth=auth)
        return mirror

    async def ensure_commit(
        self, repo: str, clone_url: str, sha: str, auth: GitAuth | None = None
    ) -> Path:
        """The mirror, fetched only when it does not already hold `sha`."""
        if not _SHA.match(sha):
            raise GitError(f"checkout {repo}: {sha!r} is not a commit sha")
        mirror = self.mirror_path(repo)
        if not await self._has_commit(mirror, sha):
            await self.fetch(repo, clone_url, auth)
            if not await self._has_commit(mirror, sha):
                raise GitError(
                    f"checkout {repo}: commit {sha} is not in the repository "
                    "(was it force-pushed away, or pushed to another remote?)"
                )
        return mirror

    async def resolve_ref(
        self, repo: str, clone_url: str, ref: str, auth: GitAuth | None = None
    ) -> str:
        """The sha a branch or tag points to, after a fetch."""
        mirror = await self.fetch(repo, clone_url, auth)
        sha = await self.git.resolve_ref(mirror, ref)
        if sha is None:
            raise GitError(f"checkout {repo}: no branch or tag named {ref!r}")
        return sha

    async def commit_message(
        self, repo: str, clone_url: str, sha: str, auth: GitAuth | None = None
    ) -> str:
        """The message of commit `sha`, fetched into the mirror first when it is missing
        there (GitError, as `ensure_commit`, when it cannot be)."""
        mirror = await self.ensure_commit(repo, clone_url, sha, auth)
        return await self.git.commit_message(mirror, sha) or ""

    async def add_worktree(self, repo: str, mirror: Path, sha: str, dest: Path) -> Path:
        """A clean detached worktree of `sha` at `dest` (which must not exist yet)."""
        async with self._lock(repo):
            with _about(repo):
                await self.git.add_worktree(mirror, sha, dest)
        return dest

    async def remove_worktree(self, repo: str, mirror: Path, dest: Path) -> None:
        """Remove the worktree and git's record of it; never raises (logged instead)."""
        async with self._lock(repo):
            try:
                await self.git.remove_worktree(mirror, dest)
            except GitFailed:
                log.warning("checkout.cleanup_failed", repo=repo, path=str(dest))
            with contextlib.suppress(GitFailed):
                await self.git.prune_worktrees(mirror)

    async def discard_worktrees(self, folder: Path) -> None:
        """At start-up: remove worktrees a previous server left behind (it was killed before
        cleaning up) and let every mirror forget them. Never raises (logged instead)."""
        leftovers = await asyncio.to_thread(_remove_folder, folder)
        if leftovers:
            log.warning("checkout.leftovers_removed", count=leftovers)
        if self.mirrors_dir.is_dir():
            for mirror in self.mirrors_dir.glob("*.git"):
                with contextlib.suppress(GitFailed):
                    await self.git.prune_worktrees(mirror)

    async def changed_files(
        self, repo: str, mirror: Path, before: str | None, after: str
    ) -> tuple[str, ...] | None:
        """Paths changed between `before` and `after`; None when unknown (no usable before)."""
        if not before or not _SHA.match(before) or not await self._has_commit(mirror, before):
            return None
        with _about(repo):
            return await self.git.changed_files(mirror, before, after)

    async def merge_base(self, repo: str, mirror: Path, branch: str, sha: str) -> str | None:
        """Where `sha` forked from `branch` (a merge request's diff base), None if unknown."""
        with _about(repo):
            return await self.git.merge_base(mirror, branch, sha)

    async def list_files(self, repo: str, mirror: Path, sha: str) -> tuple[str, ...]:
        with _about(repo):
            return await self.git.list_files(mirror, sha)

    def _lock(self, repo: str) -> asyncio.Lock:
        return self._locks.setdefault(repo, asyncio.Lock())

    async def _has_commit(self, mirror: Path, sha: str) -> bool:
        return (mirror / "HEAD").exists() and await self.git.has_commit(mirror, sha)


def _remove_folder(folder: Path) -> int:
    """Remove `folder` and what it holds; returns how many entries it held."""
    if not folder.is_dir():
        return 0
    count = sum(1 for _ in folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    return count
