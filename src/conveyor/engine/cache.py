"""GitLab `cache:` kept between runs on this host, under `<home>/cache/<key>/`.

Before a job's scripts (after its checkout, before the artifacts of its needs, as a runner
orders them) each cache whose `policy` pulls is restored into the job's folder: the first of
its key, its `fallback_keys` and the `CACHE_FALLBACK_KEY` variable that has a saved cache.
After the job (after_script included) each cache whose `policy` pushes and whose `when`
agrees with the outcome saves its `paths` (and with `untracked` every file git does not
track, asked through the `Git` boundary; outside git every file) under its key; nothing is
saved when nothing matches, so an older cache is kept.

Keys: `$VARS` are expanded with the job's variables; `key: {files, prefix}` is `prefix-`
followed by the first 40 hex digits of a SHA-256 over each matching file, in path order,
of `path NUL sha256(content)` — the files' contents, as GitLab computes it since
`files_commits` took over the commit-based key — or `prefix-default` (`default`) when no
file exists. A key with `/` or that is `.`/`..` is refused (GitLab's rule), reported on a
system line, and that cache is skipped. The folder name is the key percent-encoded.

Where caches are kept is a `CacheStore`: `FolderCaches` here (a folder per key under a
root), the server's files API on a worker (fleet.files), an in-memory fake in tests; one
conformance test (tests/integration/engine/test_cache_store_conformance.py) holds them all.
Keys are computed in the workspace, here, whatever the store.
Concurrent jobs with one key: a save copies into `<root>/.tmp/` and publishes with a rename
under an exclusive `flock` of `<root>/.locks/<key>` (`publish_cache`, also how the server
stores an uploaded cache); a restore copies under a shared lock (`cache_snapshot`), so it
sees one whole snapshot, never a mix. Synchronous file work runs in a worker thread. This
module never deletes anything in a workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from conveyor.config.expr import expand
from conveyor.engine.artifacts import (
    collect_artifacts,
    list_files,
    restore_artifacts,
    should_collect,
)
from conveyor.git.adapter import GitCli
from conveyor.git.base import Git, GitFailed
from conveyor.globs import filter_paths
from conveyor.model import Artifacts, Cache, cache_key_problem

__all__ = [
    "CacheStore",
    "FolderCaches",
    "cache_folder",
    "cache_keys",
    "cache_policy",
    "cache_root",
    "cache_snapshot",
    "files_digest",
    "publish_cache",
    "restore_caches",
    "save_caches",
    "staging_folder",
]


def cache_root(home: Path | None, run_dir: Path) -> Path:
    """`<home>/cache`; a run without a home (tests, embedded use) keeps it in its run folder."""
    return (home if home is not None else run_dir) / "cache"


def cache_folder(key: str) -> str:
    """The key as one folder name: percent-encoded, a leading dot too (never hidden)."""
    name = quote(key, safe="")
    return "%2E" + name[1:] if name.startswith(".") else name


def files_digest(workspace: Path, patterns: Sequence[str]) -> str | None:
    """The content hash of `cache:key:files` (see the module docstring); None: no file."""
    files = sorted(filter_paths(patterns, list_files(workspace)))
    if not files:
        return None
    digest = hashlib.sha256()
    for rel in files:
        digest.update(
            rel.encode() + b"\0" + hashlib.sha256((workspace / rel).read_bytes()).digest()
        )
    return digest.hexdigest()[:40]


def cache_keys(cache: Cache, env: Mapping[str, str], digest: str | None) -> list[str]:
    """The keys to try for `cache`, in order: its key, its fallback keys, then
    `CACHE_FALLBACK_KEY` (expanded, duplicates dropped). The first is where it saves."""
    if cache.key_files:
        prefix = expand(cache.key_prefix, env)
        tail = digest or "default"
        first = f"{prefix}-{tail}" if prefix else tail
    else:
        first = expand(cache.key, env) or "default"
    keys = [first, *(expand(k, env) for k in cache.fallback_keys)]
    if env.get("CACHE_FALLBACK_KEY"):
        keys.append(env["CACHE_FALLBACK_KEY"])
    return list(dict.fromkeys(k for k in keys if k))


def cache_policy(cache: Cache, env: Mapping[str, str]) -> str:
    """`cache.policy` with its variables expanded (GitLab allows `policy: $CACHE_POLICY`);
    a value that is not pull, push or pull-push after expansion is pull-push."""
    policy = expand(cache.policy, env)
    return policy if policy in ("pull", "push", "pull-push") else "pull-push"


@contextlib.contextmanager
def _locked(root: Path, key: str, *, exclusive: bool) -> Iterator[None]:
    locks = root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{cache_folder(key)}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class CacheStore(Protocol):
    """Where caches are kept, by key (module docstring)."""

    async def restore(self, keys: Sequence[str], workspace: Path) -> tuple[str, int] | None:
        """Copy the first of `keys` that has a saved cache into `workspace`; (that key,
        the number of files), None when none has one."""
        ...

    async def save(self, key: str, workspace: Path, paths: Sequence[str]) -> int:
        """Save the files of `workspace` that `paths` match under `key`, replacing what
        it held as a whole; the number of files (0: nothing matched, nothing changed)."""
        ...


class FolderCaches:
    """Caches as folders under `root` (`<home>/cache`: kept between runs on this host)."""

    __slots__ = ("root",)

    def __init__(self, root: Path) -> None:
        self.root = root

    async def restore(self, keys: Sequence[str], workspace: Path) -> tuple[str, int] | None:
        return await asyncio.to_thread(_restore, self.root, keys, workspace)

    async def save(self, key: str, workspace: Path, paths: Sequence[str]) -> int:
        return await asyncio.to_thread(_save, self.root, key, workspace, paths)


@contextlib.contextmanager
def cache_snapshot(root: Path, key: str) -> Iterator[Path | None]:
    """The folder of `key`'s cache, held still (shared lock) while the block reads it;
    None when no cache is saved under `key`."""
    folder = root / cache_folder(key)
    with _locked(root, key, exclusive=False):
        yield folder if folder.is_dir() else None


def _restore(root: Path, keys: Sequence[str], workspace: Path) -> tuple[str, int] | None:
    for key in keys:
        with cache_snapshot(root, key) as folder:
            if folder is not None:
                return key, restore_artifacts([folder], workspace)
    return None


def staging_folder(root: Path) -> Path:
    """A fresh folder under `<root>/.tmp` to fill before `publish_cache`."""
    staging_root = root / ".tmp"
    staging_root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=staging_root))


def publish_cache(root: Path, key: str, data: Path) -> None:
    """Make the folder `data` (under `<root>/.tmp`) the cache of `key`, replacing the old one
    in one rename under the key's exclusive lock; the old one is removed afterwards."""
    folder = root / cache_folder(key)
    old = Path(tempfile.mkdtemp(dir=root / ".tmp")) / "old"
    try:
        with _locked(root, key, exclusive=True):
            if folder.exists():
                folder.rename(old)
            data.rename(folder)
    finally:
        shutil.rmtree(old.parent, ignore_errors=True)


async def _untracked(git: Git, workspace: Path) -> tuple[str, ...]:
    """Files git does not track (ignored ones included, as GitLab's `untracked`)."""
    if not (workspace / ".git").exists():
        return tuple(await asyncio.to_thread(list_files, workspace))
    try:
        return await git.untracked_files(workspace)
    except GitFailed:  # no git, or a hung one: cache paths only
        return ()


def _save(root: Path, key: str, workspace: Path, paths: Sequence[str]) -> int:
    staging = staging_folder(root)
    try:
        data = staging / "data"
        data.mkdir()
        saved = collect_artifacts(workspace, Artifacts(paths=tuple(paths)), data)
        if saved:
            publish_cache(root, key, data)
        return len(saved)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _usable(keys: list[str], say: Callable[[str], None]) -> list[str]:
    usable = []
    for key in keys:
        problem = cache_key_problem(key)
        if problem is None:
            usable.append(key)
        else:
            say(f"cache key {key!r} {problem}: skipped")
    return usable


async def restore_caches(
    caches: Sequence[Cache],
    *,
    store: CacheStore,
    workspace: Path,
    env: Mapping[str, str],
    say: Callable[[str], None],
) -> list[str | None]:
    """Restore every pulling cache; returns each cache's key to save under (None: its key
    was refused). `say` writes one system line of the job's log."""
    save_keys: list[str | None] = []
    for cache in caches:
        digest = None
        if cache.key_files:
            digest = await asyncio.to_thread(files_digest, workspace, cache.key_files)
        keys = cache_keys(cache, env, digest)
        if cache_key_problem(keys[0]) is not None:
            _usable(keys[:1], say)
            save_keys.append(None)
            continue
        policy = cache_policy(cache, env)
        # A cache whose policy only pulls is never saved: save_caches skips a None key.
        save_keys.append(None if policy == "pull" else keys[0])
        if policy == "push":
            continue
        found = await store.restore(_usable(keys, say), workspace)
        if found is None:
            say(f"cache {keys[0]!r}: no saved cache")
        else:
            say(f"cache {keys[0]!r}: restored {found[1]} file(s) from key {found[0]!r}")
    return save_keys


async def save_caches(
    caches: Sequence[Cache],
    keys: Sequence[str | None],
    *,
    store: CacheStore,
    workspace: Path,
    succeeded: bool,
    say: Callable[[str], None],
    git: Git | None = None,
) -> None:
    """Save every pushing cache whose `when` agrees with the outcome (under `keys`, as
    `restore_caches` returned them). `git` lists untracked files (default: the git
    program)."""
    for cache, key in zip(caches, keys, strict=True):
        if key is None or cache.policy == "pull":
            continue
        if not should_collect(cache.when, succeeded=succeeded):
            continue
        paths = list(cache.paths)
        if cache.untracked:
            paths.extend(await _untracked(git or GitCli(), workspace))
        count = await store.save(key, workspace, paths)
        if count:
            say(f"cache {key!r}: saved {count} file(s)")
        else:
            say(f"cache {key!r}: no file matched, nothing saved")
