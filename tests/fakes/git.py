"""FakeGit: the `Git` Protocol over repositories kept in memory.

`FakeGit.create(path, files)` makes a repository whose history lives in this object and
whose work tree is a real folder (the files of each commit are written there, and an empty
`.git/` marks it, so code that copies or walks the folder sees what it would with git).
The handle it returns has GitRepo's methods (`commit`, `branch`, `tag`, `head`,
`clone_url`), so tests/integration/git/test_conformance.py builds the same history for
both. Mirrors and worktrees are folders too. History is linear per branch (one parent per
commit, no merges); there is no index, no ignore file and no network: a clone URL is the
path of a repository this fake made. `failing` makes every command raise GitFailed (a git
that is missing or broken).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.git.base import GitFailed
from conveyor.git.policy import NULL_SHA, GitAuth
from conveyor.model import EMPTY, Event, EventKind

__all__ = ["FakeGit", "FakeRepo"]


@dataclass(frozen=True, slots=True)
class _Commit:
    sha: str
    parent: str | None
    message: str
    tree: Mapping[str, str]  # path -> content: every file of the commit


@dataclass
class _Store:
    """One repository: its commits and refs (a mirror keeps the URL it was cloned from)."""

    path: Path
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    head_branch: str | None = "main"
    detached: str | None = None
    origin: str | None = None
    worktrees: set[Path] = field(default_factory=set)

    def head(self) -> str | None:
        if self.detached is not None:
            return self.detached
        return self.branches.get(self.head_branch or "")

    def resolve(self, rev: str) -> str | None:
        for prefix in ("refs/heads/", "refs/tags/"):
            if rev.startswith(prefix):
                table = self.branches if prefix == "refs/heads/" else self.tags
                return table.get(rev.removeprefix(prefix))
        if rev == "HEAD":
            return self.head()
        found = self.branches.get(rev) or self.tags.get(rev)
        return found or (rev if rev in self.commits else None)

    def ancestors(self, sha: str) -> list[str]:
        chain: list[str] = []
        current: str | None = sha
        while current is not None:
            chain.append(current)
            current = self.commits[current].parent
        return chain


def _diff(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(p for p in {*before, *after} if before.get(p) != after.get(p)))


class FakeRepo:
    """A handle with GitRepo's methods on one FakeGit repository."""

    def __init__(self, store: _Store) -> None:
        self._store = store
        self.path = store.path

    @property
    def clone_url(self) -> str:
        return str(self.path)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        store = self._store
        parent = store.head()
        tree = dict(store.commits[parent].tree) if parent else {}
        tree.update(files)
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        seed = f"{parent}\0{message}\0{sorted(tree.items())}\0{len(store.commits)}"
        sha = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        store.commits[sha] = _Commit(sha, parent, message, tree)
        if store.detached is not None:
            store.detached = sha
        else:
            store.branches[store.head_branch or "main"] = sha
        return sha

    def head(self, ref: str = "HEAD") -> str:
        sha = self._store.resolve(ref)
        assert sha is not None, ref
        return sha

    def branch(self, name: str) -> None:
        head = self._store.head()
        if head is not None:
            self._store.branches[name] = head
        self._store.head_branch, self._store.detached = name, None

    def tag(self, name: str, message: str = "release") -> str:
        sha = self.head()
        self._store.tags[name] = sha
        return sha


class FakeGit:
    """The `Git` Protocol on the repositories it made (see the module docstring)."""

    def __init__(self) -> None:
        self._stores: dict[Path, _Store] = {}
        self.failing = False

    def create(self, path: Path, files: dict[str, str] | None = None) -> FakeRepo:
        (path / ".git").mkdir(parents=True, exist_ok=True)
        store = self._stores[path.resolve()] = _Store(path)
        repo = FakeRepo(store)
        if files:
            repo.commit(files, "initial commit")
        return repo

    def _find(self, directory: Path, *, upwards: bool = False) -> _Store | None:
        where = directory.resolve()
        for candidate in (where, *where.parents) if upwards else (where,):
            if candidate in self._stores:
                return self._stores[candidate]
        return None

    def _repository(self, repository: Path, verb: str) -> _Store:
        store = None if self.failing else self._find(repository)
        if store is None:
            raise GitFailed(str(repository), f"git {verb} failed (fatal: not a git repository)")
        return store

    def _commit(self, store: _Store, rev: str, verb: str) -> _Commit:
        sha = store.resolve(rev)
        if sha is None or sha not in store.commits:
            raise GitFailed(str(store.path), f"git {verb} failed (fatal: bad revision {rev!r})")
        return store.commits[sha]

    async def describe(
        self,
        directory: Path,
        *,
        kind: EventKind,
        ref: str | None = None,
        sha: str | None = None,
        variables: Mapping[str, str] = EMPTY,
    ) -> Event:
        store = None if self.failing else self._find(directory, upwards=True)
        if store is None:
            name = directory.resolve().name
            return Event(kind, ref or "", sha or NULL_SHA, repo=name, variables=dict(variables))
        commit_sha = sha or (store.resolve(ref) if ref else None) or store.head()
        commit = store.commits.get(commit_sha or "")
        if ref is None:
            tags = [t for t, s in store.tags.items() if s == store.head()]
            is_tag = kind is EventKind.TAG and tags
            ref = tags[-1] if is_tag else (store.head_branch if store.detached is None else "")
        with_names = kind in (EventKind.PUSH, EventKind.TAG) and commit is not None
        parent = store.commits[commit.parent].tree if commit and commit.parent else {}
        return Event(
            kind,
            ref or "",
            sha or (commit.sha if commit else NULL_SHA),
            before_sha=commit.parent if commit else None,
            repo=store.path.resolve().name,
            message=commit.message if commit else "",
            default_branch="main",
            changed_files=_diff(parent, commit.tree) if with_names and commit else None,
            files=tuple(sorted(commit.tree)) if commit else (),
            variables=dict(variables),
        )

    async def head_commit(self, directory: Path) -> str | None:
        store = None if self.failing else self._find(directory, upwards=True)
        return store.head() if store is not None else None

    async def untracked_files(self, directory: Path) -> tuple[str, ...]:
        store = None if self.failing else self._find(directory, upwards=True)
        if store is None:
            raise GitFailed(str(directory), "git ls-files failed (fatal: not a git repository)")
        head = store.head()
        tracked = store.commits[head].tree if head else {}
        top = store.path.resolve()
        found = []
        for path in sorted(directory.resolve().rglob("*")):
            relative = path.relative_to(top).as_posix()
            if path.is_file() and ".git" not in path.parts and relative not in tracked:
                found.append(path.relative_to(directory.resolve()).as_posix())
        return tuple(found)

    async def compare_changes(
        self, directory: Path, sha: str, refs: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        store = None if self.failing else self._find(directory, upwards=True)
        if store is None or sha not in store.commits:
            return {}
        changes: dict[str, tuple[str, ...]] = {}
        ours = store.ancestors(sha)
        for ref in dict.fromkeys(refs):
            theirs = store.resolve(ref) if ref and not ref.startswith("-") else None
            if theirs is None:
                continue
            base = next(s for s in store.ancestors(theirs) if s in ours)
            changes[ref] = _diff(store.commits[base].tree, store.commits[sha].tree)
        return changes

    async def clone_mirror(self, url: str, mirror: Path, *, auth: GitAuth | None) -> None:
        origin = None if self.failing else self._find(Path(url))
        if origin is None:
            raise GitFailed(str(mirror.parent), "git clone failed (fatal: repository not found)")
        (mirror / "refs").mkdir(parents=True)
        (mirror / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
        self._stores[mirror.resolve()] = _Store(mirror, origin=url)
        await self.fetch_mirror(mirror, auth=auth)

    async def fetch_mirror(self, mirror: Path, *, auth: GitAuth | None) -> None:
        store = self._repository(mirror, "fetch")
        origin = self._find(Path(store.origin or ""))
        if origin is None:
            raise GitFailed(str(mirror), "git fetch failed (fatal: repository not found)")
        store.commits.update(origin.commits)
        store.branches, store.tags = dict(origin.branches), dict(origin.tags)

    async def has_commit(self, repository: Path, sha: str) -> bool:
        store = None if self.failing else self._find(repository)
        return store is not None and sha in store.commits

    async def resolve_ref(self, repository: Path, ref: str) -> str | None:
        store = self._find(repository)
        if store is None or self.failing:
            return None
        return store.branches.get(ref) or store.tags.get(ref)

    async def commit_message(self, repository: Path, sha: str) -> str | None:
        store = None if self.failing else self._find(repository)
        commit = store.commits.get(sha) if store is not None else None
        return commit.message if commit is not None else None

    async def merge_base(self, repository: Path, ref: str, sha: str) -> str | None:
        store = None if self.failing else self._find(repository)
        theirs = store.branches.get(ref) if store is not None else None
        if store is None or theirs is None or sha not in store.commits:
            return None
        ours = store.ancestors(sha)
        return next((s for s in store.ancestors(theirs) if s in ours), None)

    async def add_worktree(self, repository: Path, sha: str, dest: Path) -> None:
        store = self._repository(repository, "worktree")
        commit = self._commit(store, sha, "worktree")
        if dest.exists() and any(dest.iterdir()):
            raise GitFailed(str(repository), f"git worktree failed (fatal: '{dest}' exists)")
        for name, text in commit.tree.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        dest.mkdir(parents=True, exist_ok=True)
        store.worktrees.add(dest.resolve())

    async def remove_worktree(self, repository: Path, dest: Path) -> None:
        store = self._repository(repository, "worktree")
        if dest.resolve() not in store.worktrees:
            raise GitFailed(str(repository), f"git worktree failed ('{dest}' is not a worktree)")
        store.worktrees.discard(dest.resolve())
        shutil.rmtree(dest, ignore_errors=True)

    async def prune_worktrees(self, repository: Path) -> None:
        store = self._repository(repository, "worktree")
        store.worktrees = {path for path in store.worktrees if path.is_dir()}

    async def changed_files(self, repository: Path, before: str, after: str) -> tuple[str, ...]:
        store = self._repository(repository, "diff")
        first, second = self._commit(store, before, "diff"), self._commit(store, after, "diff")
        return _diff(first.tree, second.tree)

    async def list_files(self, repository: Path, sha: str) -> tuple[str, ...]:
        store = self._repository(repository, "ls-tree")
        return tuple(sorted(self._commit(store, sha, "ls-tree").tree))
