"""Slack incoming-webhook messages on failure and on recovery.

A run that failed is announced; a run that succeeded is announced only when the previous
finished run on the same repo and ref failed (a recovery). The previous run comes from the
store. Messages carry the run link, the failed jobs and the duration. The webhook URL is a
secret: it is held here, sent to, and never logged or put in an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from conveyor.model import RunRecord, Status
from conveyor.notify.base import failed_jobs, format_duration, run_url
from conveyor.notify.poster import Poster
from conveyor.store.base import RunRecords

__all__ = ["SlackNotifier", "previous_outcome", "slack_kind", "slack_message"]

SlackKind = Literal["failure", "recovery"]
_HISTORY = 25  # runs looked at to find the previous finished one


def previous_outcome(run: RunRecord, history: Sequence[RunRecord]) -> Status | None:
    """Status of the latest run before `run` (same repo and ref) that succeeded or failed.

    `history` is newest first, as `RunRecords.list_runs` returns it; runs still going, canceled
    or skipped do not count."""
    for other in history:
        if other.run_id == run.run_id or other.repo != run.repo or other.ref != run.ref:
            continue
        if (other.created_at, other.number) >= (run.created_at, run.number):
            continue
        if other.status in (Status.SUCCESS, Status.FAILED):
            return other.status
    return None


def slack_kind(
    run: RunRecord,
    history: Sequence[RunRecord],
    *,
    on_failure: bool = True,
    on_recovery: bool = True,
) -> SlackKind | None:
    if run.status is Status.FAILED:
        return "failure" if on_failure else None
    if run.status is Status.SUCCESS and on_recovery:
        return "recovery" if previous_outcome(run, history) is Status.FAILED else None
    return None


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(run: RunRecord, kind: SlackKind, *, link: str) -> dict[str, Any]:
    """An incoming-webhook payload: `text` (also the notification fallback)."""
    where = _escape(f"{run.repo}@{run.ref}")
    label = f"run #{run.number}" if run.number else f"run {run.run_id}"
    duration = format_duration(run.duration_s)
    took = f" in {duration}" if duration else ""
    if kind == "failure":
        lines = [f":x: {where} failed{took}: <{link}|{label}>"]
        failed = failed_jobs(run)
        if failed:
            lines.append("Failed jobs: " + ", ".join(f"`{_escape(name)}`" for name in failed))
        elif run.reason:
            lines.append(f"Reason: {_escape(run.reason)}")
    else:
        lines = [f":white_check_mark: {where} is back to green{took}: <{link}|{label}>"]
    if run.sha:
        lines.append(f"Commit {run.sha[:12]}")
    return {"text": "\n".join(lines)}


class SlackNotifier:
    """Posts to one incoming webhook; looks up the previous run in `store`."""

    target = "slack"

    def __init__(
        self,
        webhook_url: str,
        store: RunRecords,
        http: Poster,
        *,
        public_url: str,
        on_failure: bool = True,
        on_recovery: bool = True,
    ) -> None:
        self._webhook_url = webhook_url
        self._store = store
        self._http = http
        self._public_url = public_url
        self._on_failure = on_failure
        self._on_recovery = on_recovery

    def __repr__(self) -> str:
        return "SlackNotifier(<webhook hidden>)"

    async def run_started(self, run: RunRecord) -> None:
        return

    async def run_finished(self, run: RunRecord) -> None:
        if run.status not in (Status.FAILED, Status.SUCCESS):
            return
        if not run.jobs:
            stored = await asyncio.to_thread(self._store.get_run, run.run_id)
            run = stored or run
        history: list[RunRecord] = []
        if run.status is Status.SUCCESS:
            history = await asyncio.to_thread(
                self._store.list_runs, repo=run.repo, ref=run.ref, limit=_HISTORY
            )
        kind = slack_kind(run, history, on_failure=self._on_failure, on_recovery=self._on_recovery)
        if kind is None:
            return
        body = slack_message(run, kind, link=run_url(self._public_url, run.run_id))
        await self._http.post_json(
            self._webhook_url,
            body,
            headers={},
            target=self.target,
            log_fields={"run_id": run.run_id, "kind": kind},
        )
