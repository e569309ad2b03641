"""The `Git` boundary: what conveyor asks of git, as one small async Protocol.

Owns: the `Git` Protocol (implemented by `git.adapter.GitCli`, and by
`tests.fakes.git.FakeGit`; tests/integration/git/test_conformance.py runs both) and
`GitFailed`, the `GitError` a git command raises with its short `reason` kept apart from
where it happened, so a caller can name the place its user knows (`checkout acme/app`).
`repository` arguments are a bare repository (a mirror) or a work tree's top folder;
`directory` arguments are any folder inside a work tree (git looks upwards for it).
Must not: run anything (no I/O here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from conveyor.errors import GitError
from conveyor.git.policy import GitAuth
from conveyor.model import EMPTY, Event, EventKind

__all__ = ["Git", "GitFailed"]


class GitFailed(GitError):
    """A git command failed or took too long; `reason` says which and what git said
    (`git clone failed (fatal: …)`), the message puts `where` in front of it."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.reason = reason


class Git(Protocol):
    """Everything conveyor asks git. Failures of commands that must succeed raise
    `GitFailed`; questions that may have no answer say so with None."""

    async def describe(
        self,
        directory: Path,
        *,
        kind: EventKind,
        ref: str | None = None,
        sha: str | None = None,
        variables: Mapping[str, str] = EMPTY,
    ) -> Event:
        """The Event for running the pipeline of `directory` (`describe.event_from_checkout`:
        outside git ref "", sha NULL_SHA, no files)."""
        ...

    async def head_commit(self, directory: Path) -> str | None:
        """The commit HEAD points to; None outside git or before the first commit."""
        ...

    async def untracked_files(self, directory: Path) -> tuple[str, ...]:
        """Files under `directory` git does not track (ignored ones included), relative to
        it; `GitFailed` outside git."""
        ...

    async def compare_changes(
        self, directory: Path, sha: str, refs: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """For each ref that resolves, the paths changed from its merge base with `sha` to
        `sha` (`rules:changes:compare_to`); refs that do not resolve are left out."""
        ...

    async def clone_mirror(self, url: str, mirror: Path, *, auth: GitAuth | None) -> None:
        """`git clone --mirror url mirror` (`mirror` must not exist yet)."""
        ...

    async def fetch_mirror(self, mirror: Path, *, auth: GitAuth | None) -> None:
        """Bring every branch and tag of the mirror up to date with its origin (pruned)."""
        ...

    async def has_commit(self, repository: Path, sha: str) -> bool:
        """Whether the repository holds commit `sha`."""
        ...

    async def resolve_ref(self, repository: Path, ref: str) -> str | None:
        """The commit of branch `ref`, else of tag `ref`; None when neither exists."""
        ...

    async def commit_message(self, repository: Path, sha: str) -> str | None:
        """The whole message of commit `sha` (subject and body, trailing newlines cut);
        None when the repository does not hold that commit."""
        ...

    async def merge_base(self, repository: Path, ref: str, sha: str) -> str | None:
        """The best common ancestor of branch `ref` and commit `sha` (a merge request's diff
        base); None when the branch does not exist or they share no history."""
        ...

    async def add_worktree(self, repository: Path, sha: str, dest: Path) -> None:
        """A detached worktree of `sha` at `dest` (which must not exist yet)."""
        ...

    async def remove_worktree(self, repository: Path, dest: Path) -> None:
        """Remove the worktree at `dest` and the repository's record of it."""
        ...

    async def prune_worktrees(self, repository: Path) -> None:
        """Forget worktrees whose folder is gone."""
        ...

    async def changed_files(self, repository: Path, before: str, after: str) -> tuple[str, ...]:
        """Paths changed between commits `before` and `after`."""
        ...

    async def list_files(self, repository: Path, sha: str) -> tuple[str, ...]:
        """Every file of commit `sha`, sorted as git lists them."""
        ...
