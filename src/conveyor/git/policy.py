"""The one policy every git process of conveyor follows, synchronous or async.

Owns: the environment a git process gets (`git_environment`: a safe subset of ours, never
the server's tokens; `GIT_TERMINAL_PROMPT=0` and `GIT_ASKPASS=true` so git never waits for
a password, `LC_ALL=C` so its messages parse), how credentials reach it (`GitAuth`: a Basic
`http.extraHeader` in `GIT_CONFIG_*` variables, never in a URL or an argument), the named
timeouts (`Timeouts`) and the `Popen` start used by `describe`. Every git process leads its
own process group (killing the group stops git and its helpers). One started here gets its
own session only when conveyor has a controlling terminal (`has_terminal`, the rule of a
job's steps too): `setsid` is a new scheduler autogroup, 0.5-5 ms more per git start on a
loaded machine, for nothing when there is no terminal to keep git from (CI, a pipe). The
async adapter's always get one (uvloop's subprocess_exec has no `process_group`).
Must not: import asyncio (`conveyor run` starts git through it before asyncio is loaded),
nor run git itself beyond `start_git`.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "NULL_SHA",
    "SAFE_VARIABLES",
    "GitAuth",
    "Timeouts",
    "git_environment",
    "has_terminal",
    "start_git",
]

NULL_SHA = "0" * 40

# What git may see of our environment: where programs and the user's git config live, the
# locale, a temp folder and TLS roots. Nothing else (tokens, store URLs) ever reaches it.
SAFE_VARIABLES = ("PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
_FIXED = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
_BASIC_USER = {"github": "x-access-token", "gitlab": "oauth2"}


# Plain classes with __slots__, not frozen dataclasses or NamedTuples: this module is on
# `conveyor run`'s start-up path, where defining those costs a quarter to half a
# millisecond each. Neither is changed after it is made.
class Timeouts:
    """How long one git process may take, by what it does.

    read_s: a question the repository answers from its objects and refs (describe, diff,
        ls-tree, rev-parse, cat-file).
    worktree_s: walking or writing a whole work tree (worktree add and remove, untracked
        files): grows with the size of the checkout.
    network_s: clone and fetch.
    The server gives every one of them `server.git_timeout` (docs/api.md: per git call)."""

    __slots__ = ("network_s", "read_s", "worktree_s")

    def __init__(
        self, *, read_s: float = 10.0, worktree_s: float = 60.0, network_s: float = 300.0
    ) -> None:
        self.read_s = read_s
        self.worktree_s = worktree_s
        self.network_s = network_s

    def __repr__(self) -> str:
        seconds = f"read_s={self.read_s}, worktree_s={self.worktree_s}"
        return f"Timeouts({seconds}, network_s={self.network_s})"


class GitAuth:
    """A token for HTTPS clones, sent as a Basic `http.extraHeader` through the environment."""

    __slots__ = ("provider", "token")

    def __init__(self, provider: str, token: str) -> None:
        self.provider = provider
        self.token = token

    def environment(self) -> dict[str, str]:
        import base64  # only when a repo has a token: not on the CLI's start-up path

        user = _BASIC_USER.get(self.provider, "git")
        basic = base64.b64encode(f"{user}:{self.token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }

    def __repr__(self) -> str:
        return f"GitAuth({self.provider}, <token hidden>)"


def git_environment(
    base: Mapping[str, str] | None = None, auth: GitAuth | None = None
) -> dict[str, str]:
    """The environment of one git process: the safe subset of `base` (default: ours), the
    fixed settings, and `auth`'s header when given."""
    source = os.environ if base is None else base
    env = {key: source[key] for key in SAFE_VARIABLES if key in source}
    env.update(_FIXED)
    if auth is not None:
        env.update(auth.environment())
    return env


def start_git(
    directory: Path, args: Sequence[str], env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start `git -C directory ARGS` now (stdout piped, no stdin, stderr dropped) leading its
    own group; the caller waits with a deadline and kills it. Raises OSError (no git)."""
    session = has_terminal()
    return subprocess.Popen(
        ["git", "-C", str(directory), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=session,
        process_group=None if session else 0,  # own group: a kill stops git and its helpers
    )


@functools.cache
def has_terminal() -> bool:
    """Whether this process has a controlling terminal: then every process conveyor starts
    (git, a job's steps) gets its own session, which keeps it from that terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal
        return False
    os.close(fd)
    return True
