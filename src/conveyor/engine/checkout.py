"""Checkouts for server runs: a bare mirror per repo and a clean worktree per run.

`Checkouts` keeps `<home>/mirrors/<repo>.git` (`git clone --mirror`, then `git fetch`), adds
a detached worktree at the run's exact sha, lists the files a push changed (before..after)
and the files of the commit (for `exists` rules), finds the pipeline file in that commit and
removes the worktree after the run. Credentials reach git only through the environment
(`GIT_CONFIG_*` carrying an `http.extraHeader`), never in a URL or an argument. Every git
call has a timeout and runs in its own process group (killed on timeout or cancel). A
failure is a CheckoutError naming the repo and what git said; it fails the run, never the
server. It must not plan or run jobs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from conveyor.errors import ConveyorError

__all__ = ["CheckoutError", "Checkouts", "GitAuth"]

log = structlog.get_logger(__name__)

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
_SAFE_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
_BASIC_USER = {"github": "x-access-token", "gitlab": "oauth2"}


class CheckoutError(ConveyorError):
    """The commit of a run could not be fetched or checked out."""


@dataclass(frozen=True, slots=True, repr=False)
class GitAuth:
    """A token for HTTPS clones, sent as a Basic `http.extraHeader` through the environment."""

    provider: str
    token: str

    def environment(self) -> dict[str, str]:
        user = _BASIC_USER.get(self.provider, "git")
        basic = base64.b64encode(f"{user}:{self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    def __repr__(self) -> str:
        return f"GitAuth({self.provider}, <token hidden>)"


class Checkouts:
    """Mirrors under `mirrors_dir`; one lock per mirror serialises fetches and worktree edits."""

    def __init__(
        self, mirrors_dir: Path, *, timeout_s: float, env: Mapping[str, str] | None = None
    ) -> None:
        self.mirrors_dir = mirrors_dir
        self.timeout_s = timeout_s
        base = os.environ if env is None else env
        self._base_env = {k: base[k] for k in _SAFE_ENV if k in base}
        self._base_env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ASKPASS": "true"})
        self._locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, repo: str) -> Path:
        return self.mirrors_dir / (repo.replace("/", "__") + ".git")

    async def fetch(self, repo: str, clone_url: str, auth: GitAuth | None = None) -> Path:
        """Create or update the mirror of `repo`; returns its path."""
        mirror = self.mirror_path(repo)
        async with self._lock(repo):
            if (mirror / "HEAD").exists():
                await self._git(repo, auth, "--git-dir", str(mirror), "fetch", "--prune", "origin")
            else:
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await self._git(repo, auth, "clone", "--mirror", "--quiet", clone_url, str(mirror))
        return mirror

    async def ensure_commit(
        self, repo: str, clone_url: str, sha: str, auth: GitAuth | None = None
    ) -> Path:
        """The mirror, fetched only when it does not already hold `sha`."""
        if not _SHA.match(sha):
            raise CheckoutError(f"checkout {repo}: {sha!r} is not a commit sha")
        mirror = self.mirror_path(repo)
        if not await self._has_commit(repo, mirror, sha):
            await self.fetch(repo, clone_url, auth)
            if not await self._has_commit(repo, mirror, sha):
                raise CheckoutError(
                    f"checkout {repo}: commit {sha} is not in the repository "
                    "(was it force-pushed away, or pushed to another remote?)"
                )
        return mirror

    async def resolve_ref(
        self, repo: str, clone_url: str, ref: str, auth: GitAuth | None = None
    ) -> str:
        """The sha a branch or tag points to, after a fetch."""
        mirror = await self.fetch(repo, clone_url, auth)
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{commit}}"):
            with contextlib.suppress(CheckoutError):
                out = await self._git(
                    repo, None, "--git-dir", str(mirror), "rev-parse", "--verify", candidate
                )
                return out.strip()
        raise CheckoutError(f"checkout {repo}: no branch or tag named {ref!r}")

    async def add_worktree(self, repo: str, mirror: Path, sha: str, dest: Path) -> Path:
        """A clean detached worktree of `sha` at `dest` (which must not exist yet)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self._lock(repo):
            await self._git(
                repo, None, "--git-dir", str(mirror), "worktree", "add", "--detach",
                "--quiet", str(dest), sha,
            )  # fmt: skip
        return dest

    async def remove_worktree(self, repo: str, mirror: Path, dest: Path) -> None:
        """Remove the worktree and git's record of it; never raises (logged instead)."""
        async with self._lock(repo):
            try:
                await self._git(
                    repo, None, "--git-dir", str(mirror), "worktree", "remove", "--force",
                    str(dest),
                )  # fmt: skip
            except CheckoutError:
                log.warning("checkout.cleanup_failed", repo=repo, path=str(dest))
            with contextlib.suppress(CheckoutError):
                await self._git(repo, None, "--git-dir", str(mirror), "worktree", "prune")

    async def discard_worktrees(self, folder: Path) -> None:
        """At start-up: remove worktrees a previous server left behind (it was killed before
        cleaning up) and let every mirror forget them. Never raises (logged instead)."""
        leftovers = await asyncio.to_thread(_remove_folder, folder)
        if leftovers:
            log.warning("checkout.leftovers_removed", count=leftovers)
        if self.mirrors_dir.is_dir():
            for mirror in self.mirrors_dir.glob("*.git"):
                with contextlib.suppress(CheckoutError):
                    await self._git(
                        mirror.name, None, "--git-dir", str(mirror), "worktree", "prune"
                    )

    async def changed_files(
        self, repo: str, mirror: Path, before: str | None, after: str
    ) -> tuple[str, ...] | None:
        """Paths changed between `before` and `after`; None when unknown (no usable before)."""
        if not before or not _SHA.match(before) or not await self._has_commit(repo, mirror, before):
            return None
        out = await self._git(
            repo, None, "--git-dir", str(mirror), "diff", "--name-only", "-z", before, after
        )
        return tuple(p for p in out.split("\0") if p)

    async def list_files(self, repo: str, mirror: Path, sha: str) -> tuple[str, ...]:
        out = await self._git(
            repo, None, "--git-dir", str(mirror), "ls-tree", "-r", "-z", "--name-only", sha
        )
        return tuple(p for p in out.split("\0") if p)

    def _lock(self, repo: str) -> asyncio.Lock:
        return self._locks.setdefault(repo, asyncio.Lock())

    async def _has_commit(self, repo: str, mirror: Path, sha: str) -> bool:
        if not (mirror / "HEAD").exists():
            return False
        try:
            await self._git(
                repo, None, "--git-dir", str(mirror), "cat-file", "-e", f"{sha}^{{commit}}"
            )
        except CheckoutError:
            return False
        return True

    async def _git(self, repo: str, auth: GitAuth | None, *args: str) -> str:
        env = dict(self._base_env)
        if auth is not None:
            env.update(auth.environment())
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # own group: a timeout kills git and its helpers
        )
        verb = args[2] if args[0] == "--git-dir" else args[0]
        try:
            async with asyncio.timeout(self.timeout_s):
                out, err = await proc.communicate()
        except TimeoutError:
            await _kill(proc)
            raise CheckoutError(
                f"checkout {repo}: git {verb} took longer than {self.timeout_s:g} s "
                "(raise server.git_timeout, or check the remote)"
            ) from None
        except BaseException:  # cancelled: git must not outlive the run
            await _kill(proc)
            raise
        if proc.returncode != 0:
            said = err.decode(errors="replace").strip().splitlines()
            raise CheckoutError(
                f"checkout {repo}: git {verb} failed "
                f"({said[-1] if said else f'exit {proc.returncode}'})"
            )
        return out.decode(errors="replace")


def _remove_folder(folder: Path) -> int:
    """Remove `folder` and what it holds; returns how many entries it held."""
    if not folder.is_dir():
        return 0
    count = sum(1 for _ in folder.iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    return count


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
