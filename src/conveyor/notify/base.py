"""Notifications: the Notifier Protocol and `Notifications`, the server queue's RunListener.

`Notifications.run_started(run)` / `run_finished(run)` return at once: each notifier's call
runs in a background task with a deadline, so a hung GitHub or Slack never blocks the
engine. Calls for the same run and notifier run in order (the final commit status can never
overtake the pending one). A failure is logged once, with run_id, target and kind, and never
raised; tokens and webhook URLs never reach a log line. Also the pure text helpers that all
notifiers share (run link, description within GitHub's 140 characters, failed jobs).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from conveyor.errors import UpstreamError
from conveyor.model import RunRecord, Status
from conveyor.notify.poster import Poster

__all__ = [
    "MAX_DESCRIPTION",
    "CommitStatuses",
    "Notifications",
    "Notifier",
    "Phase",
    "StatusRepo",
    "describe_run",
    "failed_jobs",
    "format_duration",
    "run_url",
]

log = structlog.get_logger(__name__)

MAX_DESCRIPTION = 140  # GitHub rejects longer commit status descriptions

Phase = Literal["started", "finished"]


@dataclass(frozen=True, slots=True)
class StatusRepo:
    """Where and how to post commit statuses for one repo. `project` is the GitLab project
    id or path (GitHub: unused). The token never shows in repr."""

    name: str
    api_url: str
    token: str = field(repr=False)
    project: str = ""


class Notifier(Protocol):
    """Tells one outside system about a run. `target` names it in logs ("github", "slack").

    Methods raise UpstreamError when the outside system could not be told; they may take as
    long as their retry policy allows (the caller runs them in the background)."""

    @property
    def target(self) -> str: ...

    async def run_started(self, run: RunRecord) -> None: ...

    async def run_finished(self, run: RunRecord) -> None: ...


class CommitStatuses:
    """A notifier that posts a commit status when a run starts and when it finishes, for the
    repos of one provider; subclasses say where and what (`request`). Other runs are left
    alone."""

    target = "commit_status"

    def __init__(self, repos: Mapping[str, StatusRepo], http: Poster, *, public_url: str) -> None:
        self._repos = dict(repos)
        self._http = http
        self._public_url = public_url

    async def run_started(self, run: RunRecord) -> None:
        await self._post(run, "started")

    async def run_finished(self, run: RunRecord) -> None:
        await self._post(run, "finished")

    def request(
        self, repo: StatusRepo, run: RunRecord, phase: Phase, target_url: str
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(url, JSON body, headers) of the status call."""
        raise NotImplementedError

    async def _post(self, run: RunRecord, phase: Phase) -> None:
        repo = self._repos.get(run.repo)
        if repo is None or not run.sha:
            return
        url, body, headers = self.request(repo, run, phase, run_url(self._public_url, run.run_id))
        await self._http.post_json(
            url, body, headers=headers, target=self.target, log_fields={"run_id": run.run_id}
        )


def run_url(public_url: str, run_id: str) -> str:
    """The link a status or a chat message points to."""
    return f"{public_url.rstrip('/')}/api/v1/runs/{run_id}"


def format_duration(seconds: float | None) -> str:
    """'1h 2m 3s', '4m 5s', '6s', or '' when unknown."""
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def failed_jobs(run: RunRecord) -> list[str]:
    """Jobs that failed the run (allowed failures excluded), in record order."""
    return [j.name for j in run.jobs if j.status is Status.FAILED and not j.allow_failure]


def describe_run(run: RunRecord, phase: Phase) -> str:
    """A one-line description within MAX_DESCRIPTION characters."""
    if phase == "started":
        text = f"Run #{run.number} started" if run.number else "Run started"
    else:
        words = {
            Status.SUCCESS: "passed",
            Status.FAILED: "failed",
            Status.CANCELED: "was canceled",
            Status.SKIPPED: "was skipped",
        }
        verb = words.get(run.status, str(run.status))
        text = f"Run #{run.number} {verb}" if run.number else f"Run {verb}"
        duration = format_duration(run.duration_s)
        if duration:
            text += f" in {duration}"
        failed = failed_jobs(run)
        if failed:
            text += ": " + ", ".join(failed)
        elif run.status is Status.FAILED and run.reason:
            text += f" ({run.reason})"
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "…"
    return text


class Notifications:
    """The RunListener the server's queue calls; fans out to notifiers in the background.

    deadline_s bounds one notifier call (its retries included). `drain()` waits for the calls
    in flight (tests, shutdown); `aclose()` drains, cancels what is left, closes the client.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        http: Poster | None = None,
        *,
        deadline_s: float = 120.0,
    ) -> None:
        self.notifiers = tuple(notifiers)
        self.http = http
        self._deadline_s = deadline_s
        self._tails: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: dict[asyncio.Task[None], tuple[str, str]] = {}  # -> (run_id, target)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run_started(self, run: RunRecord) -> None:
        self._dispatch(run, "started")

    async def run_finished(self, run: RunRecord) -> None:
        self._dispatch(run, "finished")

    def _dispatch(self, run: RunRecord, phase: Phase) -> None:
        for notifier in self.notifiers:
            key = (run.run_id, notifier.target)
            previous = self._tails.get(key)
            task = asyncio.create_task(
                self._call_after(previous, notifier, run, phase),
                name=f"notify-{notifier.target}-{run.run_id}",
            )
            self._tails[key] = task
            self._tasks[task] = key
            task.add_done_callback(functools.partial(self._forget, key))

    def _forget(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def _call_after(
        self,
        previous: asyncio.Task[None] | None,
        notifier: Notifier,
        run: RunRecord,
        phase: Phase,
    ) -> None:
        if previous is not None:
            # The earlier call for this run never raises (it is guarded); wait for its end only.
            await asyncio.wait({previous})
        await self._call_guarded(notifier, run, phase)

    async def _call_guarded(self, notifier: Notifier, run: RunRecord, phase: Phase) -> None:
        fields = {"run_id": run.run_id, "target": notifier.target, "phase": phase}
        try:
            async with asyncio.timeout(self._deadline_s):
                if phase == "started":
                    await notifier.run_started(run)
                else:
                    await notifier.run_finished(run)
        except UpstreamError as error:
            log.warning("notify.failed", kind=error.kind, reason=error.reason, **fields)
        except TimeoutError:
            log.warning("notify.failed", kind="deadline", reason="notifier deadline", **fields)
        except Exception:  # the per-notifier guard: a bug here must not reach the engine
            log.error("notify.crashed", exc_info=True, **fields)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until no call is in flight (or timeout_s passes)."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout_s: float = 5.0) -> None:
        try:
            await self.drain(timeout_s)
        except TimeoutError:
            for task, (run_id, target) in list(self._tasks.items()):
                task.cancel()
                log.warning("notify.failed", run_id=run_id, target=target, kind="shutdown")
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.aclose()
