"""The local git checkout -> Event (ref, sha, message, parent, changed files, file list).

Owns: asking `git` about a working directory, for `conveyor run` / `plan` / `play` (and the
server's `compare_to` diffs). Every git command only reads, so the handful needed (work
tree and top level, one `git log -1` for commit, parent, message and changed files, the
file list, the origin URL and init.defaultBranch in one `git config`, origin's HEAD, the
current branch) start at once and are collected together: the wall time of about one git
process instead of eleven in a row. Each runs under `policy` (safe environment, own
session, `Timeouts.read_s` for the whole batch); any failure (no git, not a repository, no
commits yet) falls back to an empty value, so the CLI also runs outside git: ref "", sha
"0"*40, no changed files, no file list. For GitLab `rules:changes:compare_to` it also lists
the paths changed between each named ref and the commit (`git diff ref...sha`: from their
merge base, as GitLab compares), one git process per ref, all at once
(`add_compare_changes`, and `changes_lookup` for `include:rules`). `conveyor run` starts
the describing commands first (`start_checkout_query`) and reads them
(`CheckoutQuery.event`) after its imports, so git works on the other core meanwhile;
`event_from_checkout` is both at once. Synchronous on purpose (it runs before asyncio is
imported); the async `Git` adapter hands its `describe` and `compare_changes` here.
Must not: import asyncio, change the repository, reach the network, or let credentials
from a remote URL into the Event (only the remote's path `group/app` is kept).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from conveyor.git.policy import NULL_SHA, Timeouts, git_environment, start_git
from conveyor.model import EMPTY, Event, EventKind

__all__ = [
    "NULL_SHA",
    "CheckoutQuery",
    "add_compare_changes",
    "changes_lookup",
    "changes_since_refs",
    "event_from_checkout",
    "repo_path_from_url",
    "start_checkout_query",
]

_TIMEOUT_S = Timeouts().read_s

# `git log -1` of one commit: sha, parents, raw message, each NUL-terminated; with
# `_NAMES`, the files it changed against its first parent follow (all of them for a root).
_COMMIT_FORMAT = "--format=%H%x00%P%x00%B%x00"
_NAMES = ("--name-only", "--no-renames", "-m", "--first-parent", "--root")
_CONFIG_KEYS = r"^(remote\.origin\.url|init\.defaultbranch)$"


class _GitCommands:
    """`git -C directory ARGS` for each named command, all started at once by the
    constructor; `collect()` waits for them (one deadline for all), `stop()` kills any still
    running. None for a command that failed, timed out or could not start."""

    def __init__(self, directory: Path, commands: Mapping[str, Sequence[str]]) -> None:
        env = git_environment()
        self._results: dict[str, str | None] = dict.fromkeys(commands)
        self._started: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for key, args in commands.items():
                try:
                    self._started[key] = start_git(directory, args, env)
                except OSError:
                    continue
        except BaseException:
            self.stop()
            raise
        self._deadline = time.monotonic() + _TIMEOUT_S

    def collect(self) -> dict[str, str | None]:
        try:
            for key, process in self._started.items():
                try:
                    timeout_s = max(0.0, self._deadline - time.monotonic())
                    out, _ = process.communicate(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    continue
                if process.returncode == 0:
                    self._results[key] = out.decode("utf-8", "replace")
        finally:
            self.stop()
        return self._results

    def stop(self) -> None:
        for process in self._started.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # git and any helper it started
                process.communicate()


def _git_all(directory: Path, commands: Mapping[str, Sequence[str]]) -> dict[str, str | None]:
    """Stdout of `git -C directory ARGS` for each named command, all started at once;
    None for a command that failed, timed out or could not start."""
    return _GitCommands(directory, commands).collect()


def _line(output: str | None) -> str | None:
    """The first line of a one-value command's output; None when empty or failed."""
    if not output:
        return None
    return output.split("\n", 1)[0] or None


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


def _commit_candidates(ref: str | None, sha: str | None) -> list[str]:
    """Revisions to describe, best first: the given sha; else the given ref as a tag, a
    branch, anything git resolves; else (or when none of them resolves) HEAD."""
    if sha:
        return [sha]
    candidates = [f"refs/tags/{ref}", f"refs/heads/{ref}", ref] if ref else []
    return [f"{c}^{{commit}}" for c in candidates if not c.startswith("-")] + ["HEAD"]


def _describe_commands(
    kind: EventKind, ref: str | None, candidates: Sequence[str]
) -> dict[str, Sequence[str]]:
    """The git commands that describe the checkout, by name (`commitN` per candidate)."""
    names = _NAMES if kind in (EventKind.PUSH, EventKind.TAG) else ()
    log = ("log", "-1", "-z", "--no-color", "--no-show-signature", _COMMIT_FORMAT, *names)
    commands: dict[str, Sequence[str]] = {
        "top": ("rev-parse", "--is-inside-work-tree", "--show-toplevel"),
        **{f"commit{i}": (*log, rev, "--") for i, rev in enumerate(candidates)},
        "files": ("ls-files", "-z", "--full-name", "--", ":/"),
        "config": ("config", "-z", "--get-regexp", _CONFIG_KEYS),
        "origin_head": ("symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"),
    }
    if ref is None:
        commands["branch"] = ("symbolic-ref", "--short", "-q", "HEAD")
        if kind is EventKind.TAG:
            commands["tags"] = ("tag", "--points-at", "HEAD", "--sort=-creatordate")
    return commands


def _parse_commit(output: str) -> tuple[str, str | None, str, tuple[str, ...]]:
    """(sha, first parent or None, message, changed files) from `_COMMIT_FORMAT` output."""
    sha, parents, message, names = [*output.split("\0", 3), "", "", ""][:4]
    listing = names.removeprefix("\0").removeprefix("\n")
    return (
        sha,
        parents.split(" ", 1)[0] or None,
        message.rstrip("\n"),
        tuple(name for name in listing.split("\0") if name),
    )


def _config_values(output: str | None) -> dict[str, str]:
    """`git config -z --get-regexp` output as key -> first value (keys are lower case)."""
    values: dict[str, str] = {}
    for entry in (output or "").split("\0"):
        key, _, value = entry.partition("\n")
        if key:
            values.setdefault(key, value)
    return values


class CheckoutQuery:
    """The git commands that describe a checkout, started by `start_checkout_query` and not
    yet read. `event()` waits for them and builds the Event (once); `close()` stops any
    still running, for a caller that gives up before reading them."""

    def __init__(
        self, directory: Path, *, kind: EventKind, ref: str | None, sha: str | None
    ) -> None:
        self.directory = directory
        self.kind = kind
        self.ref = ref
        self.sha = sha
        self.candidates = _commit_candidates(ref, sha)
        self._commands = _GitCommands(directory, _describe_commands(kind, ref, self.candidates))
        self._found: dict[str, str | None] | None = None

    def close(self) -> None:
        self._commands.stop()

    def event(self, variables: Mapping[str, str] = EMPTY) -> Event:
        """The Event (see `event_from_checkout`), carrying `variables`."""
        if self._found is None:
            self._found = self._commands.collect()
        return _describe_event(self, self._found, variables)


def start_checkout_query(
    directory: Path, *, kind: EventKind, ref: str | None = None, sha: str | None = None
) -> CheckoutQuery:
    """Start the git commands that describe `directory` for `kind` (see
    `event_from_checkout`); read them with `.event(variables)`."""
    return CheckoutQuery(directory, kind=kind, ref=ref, sha=sha)


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
    return start_checkout_query(directory, kind=kind, ref=ref, sha=sha).event(variables)


def _describe_event(
    query: CheckoutQuery, found: Mapping[str, str | None], variables: Mapping[str, str]
) -> Event:
    directory, kind, ref, sha = query.directory, query.kind, query.ref, query.sha
    with_names = kind in (EventKind.PUSH, EventKind.TAG)
    top_lines = (found["top"] or "").splitlines()
    if not top_lines or top_lines[0] != "true":
        return Event(
            kind=kind,
            ref=ref or "",
            sha=sha or NULL_SHA,
            repo=directory.resolve().name,
            default_branch="main",
            variables=dict(variables),
        )
    outputs = (found[f"commit{i}"] for i in range(len(query.candidates)))
    described = next((out for out in outputs if out), None)
    commit, parent, message, changed = _parse_commit(described) if described else ("", None, "", ())
    config = _config_values(found["config"])
    origin = config.get("remote.origin.url")
    top = top_lines[1] if len(top_lines) > 1 else str(directory)
    origin_head = _line(found["origin_head"])
    if ref is None:
        ref = _line(found.get("tags")) or _line(found["branch"]) or ""
    return Event(
        kind=kind,
        ref=ref,
        sha=sha or commit or NULL_SHA,
        before_sha=parent,
        repo=repo_path_from_url(origin) if origin else Path(top).resolve().name,
        message=message,
        default_branch=(
            origin_head.removeprefix("origin/")
            if origin_head
            else config.get("init.defaultbranch") or "main"
        ),
        changed_files=changed if described and with_names else None,
        files=None if found["files"] is None else tuple(p for p in found["files"].split("\0") if p),
        variables=dict(variables),
    )


def changes_since_refs(
    directory: Path, sha: str, refs: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """For each ref git resolves in `directory`, the paths changed between its merge base
    with `sha` and `sha` (renames as a deletion and an addition). Refs git cannot resolve
    (or that could pass for an option) are left out: to the planner they are not valid."""
    usable = [ref for ref in dict.fromkeys(refs) if ref and not ref.startswith("-")]
    diff = ("diff", "--name-only", "--no-renames", "--no-ext-diff", "--no-color", "-z")
    found = _git_all(
        directory, {str(i): (*diff, f"{ref}...{sha}", "--") for i, ref in enumerate(usable)}
    )
    return {
        ref: tuple(path for path in out.split("\0") if path)
        for i, ref in enumerate(usable)
        if (out := found[str(i)]) is not None
    }


def changes_lookup(
    directory: Path, sha: str
) -> Callable[[Sequence[str]], Mapping[str, tuple[str, ...]] | None]:
    """`changes_since_refs` at `sha`, as the loaders' `include:rules` ask for it: None when
    no commit is known (outside git), so such rules hold, as for jobs."""

    def lookup(refs: Sequence[str]) -> Mapping[str, tuple[str, ...]] | None:
        if not sha or sha == NULL_SHA:
            return None
        return changes_since_refs(directory, sha, refs)

    return lookup


def add_compare_changes(directory: Path, event: Event, refs: Sequence[str]) -> Event:
    """`event` with `changes_by_ref` for `refs` (what the pipeline's `compare_to` names:
    `plan.compare_to_refs`). No git process when there is none; left unknown (so such
    rules hold) outside git."""
    if not refs or not event.sha or event.sha == NULL_SHA:
        return event
    return replace(event, changes_by_ref=changes_since_refs(directory, event.sha, refs))
