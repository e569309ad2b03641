"""The local git checkout -> Event (ref, sha, message, parent, changed files, file list).

Owns: asking `git` about a working directory, for `conveyor run` / `conveyor plan`.
Each call runs `git -C DIR ...` without a shell and with a timeout; any failure (no git,
not a repository, no commits yet) falls back to an empty value, so the CLI also runs
outside git: ref "", sha "0"*40, no changed files, no file list.
Must not: change the repository, reach the network, or let credentials from a remote URL
into the Event (only the remote's path `group/app` is kept).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from conveyor.model import EMPTY, Event, EventKind

__all__ = ["NULL_SHA", "event_from_checkout", "repo_path_from_url"]

NULL_SHA = "0" * 40
GIT_TIMEOUT_S = 10.0


def _git(directory: Path, *args: str) -> str | None:
    """Stdout of `git -C directory args` without its trailing newline, or None on failure."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.rstrip("\n")


def repo_path_from_url(url: str) -> str:
    """`group/app` from an https, ssh, scp-like (`git@host:group/app.git`) or local URL.
    Credentials and host are dropped."""
    url = url.strip()
    if "://" in url:
        path = urlsplit(url).path
    elif ":" in url.split("/", 1)[0] and not url.startswith("/"):
        path = url.split(":", 1)[1]  # scp-like: [user@]host:group/app.git
    else:
        parts = PurePosixPath(url).parts[-2:]  # a local path: keep its last two parts
        path = "/".join(part for part in parts if part != "/")
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    return path


def _current_ref(directory: Path, kind: EventKind) -> str:
    if kind is EventKind.TAG:
        tags = _git(directory, "tag", "--points-at", "HEAD", "--sort=-creatordate")
        if tags:
            return tags.splitlines()[0]
    return _git(directory, "symbolic-ref", "--short", "-q", "HEAD") or ""


def _default_branch(directory: Path) -> str:
    origin_head = _git(directory, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD")
    if origin_head:
        return origin_head.removeprefix("origin/")
    return _git(directory, "config", "--get", "init.defaultBranch") or "main"


def _changed_files(directory: Path, sha: str, parent: str | None) -> tuple[str, ...] | None:
    if parent is not None:
        listing = _git(directory, "diff", "--name-only", "--no-renames", parent, sha)
    else:  # the first commit: every file it adds
        listing = _git(directory, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", sha)
    if listing is None:
        return None
    return tuple(line for line in listing.splitlines() if line)


def _resolve_sha(directory: Path, ref: str | None) -> str | None:
    if ref:
        for candidate in (f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
            found = _git(directory, "rev-parse", "--verify", "-q", f"{candidate}^{{commit}}")
            if found:
                return found
    return _git(directory, "rev-parse", "--verify", "-q", "HEAD")


def event_from_checkout(
    directory: Path,
    *,
    kind: EventKind,
    ref: str | None = None,
    sha: str | None = None,
    variables: Mapping[str, str] = EMPTY,
) -> Event:
    """The Event for running the pipeline of `directory` as `kind`.

    ref: given, else the tag at HEAD (kind=tag) or the current branch.  sha: given, else
    the commit of the given ref, else HEAD.  changed_files: against the parent commit for
    push and tag events, None otherwise (GitLab: `changes` holds for other events).
    """
    if _git(directory, "rev-parse", "--is-inside-work-tree") != "true":
        return Event(
            kind=kind,
            ref=ref or "",
            sha=sha or NULL_SHA,
            repo=directory.resolve().name,
            default_branch="main",
            variables=dict(variables),
        )
    commit = sha or _resolve_sha(directory, ref)
    parent = _git(directory, "rev-parse", "--verify", "-q", f"{commit}^") if commit else None
    changed = None
    if commit and kind in (EventKind.PUSH, EventKind.TAG):
        changed = _changed_files(directory, commit, parent)
    listing = _git(directory, "ls-files", "-z", "--full-name", "--", ":/")
    origin = _git(directory, "remote", "get-url", "origin")
    top = _git(directory, "rev-parse", "--show-toplevel")
    return Event(
        kind=kind,
        ref=ref if ref is not None else _current_ref(directory, kind),
        sha=commit or NULL_SHA,
        before_sha=parent,
        repo=repo_path_from_url(origin) if origin else Path(top or directory).resolve().name,
        message=(_git(directory, "log", "-1", "--format=%B", commit) or "") if commit else "",
        default_branch=_default_branch(directory),
        changed_files=changed,
        files=None if listing is None else tuple(p for p in listing.split("\0") if p),
        variables=dict(variables),
    )
