"""What the web UI's templates show, shaped from run records and monitor entries: status
words with an icon (colour is never the only signal), durations, jobs grouped by stage, the
buttons a run or job offers, and links that are safe to put in an href.

Pure: no I/O, no clock (callers pass `now`); the templates autoescape every value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from conveyor.engine.resume import RETRYABLE
from conveyor.model import JobRecord, RunRecord, Status

__all__ = [
    "STATUS_ICONS",
    "Stage",
    "age_text",
    "duration_text",
    "group_by_stage",
    "job_actions",
    "job_anchor",
    "job_path",
    "run_actions",
    "safe_link",
    "short_sha",
    "status_icon",
    "trigger_facts",
]

# Shapes differ per status so the icon reads without colour (and in forced-colours mode).
STATUS_ICONS: Mapping[str, str] = {
    "success": "✔",
    "failed": "✖",
    "running": "▶",
    "pending": "◷",
    "canceled": "⊘",
    "skipped": "»",
    "manual": "⚙",
}


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    jobs: tuple[JobRecord, ...]


def status_icon(status: str | None) -> str:
    return STATUS_ICONS.get(status or "", "?")


def duration_text(seconds: float | None) -> str:
    """`1m 05s`, `3.2s`, or an empty string when not known."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def age_text(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def short_sha(sha: str | None) -> str:
    return (sha or "")[:8]


def group_by_stage(jobs: Iterable[JobRecord]) -> tuple[Stage, ...]:
    """Stages in the order their first job appears (the plan's order)."""
    order: list[str] = []
    grouped: dict[str, list[JobRecord]] = {}
    for job in jobs:
        if job.stage not in grouped:
            order.append(job.stage)
            grouped[job.stage] = []
        grouped[job.stage].append(job)
    return tuple(Stage(name, tuple(grouped[name])) for name in order)


def job_actions(run: RunRecord, job: JobRecord) -> tuple[str, ...]:
    """The buttons a job shows, in a run not canceled: `play` for a manual job waiting,
    `retry` for a failed or canceled job (its next attempt, in the same run)."""
    if run.status is Status.CANCELED:
        return ()
    if job.status is Status.MANUAL:
        return ("play",)
    if job.status in RETRYABLE:
        return ("retry",)
    return ()


def run_actions(run: RunRecord) -> tuple[str, ...]:
    """`cancel` while the run is not final, `retry` (a new run of the same trigger) once it
    ended failed or canceled."""
    if not run.status.is_final:
        return ("cancel",)
    if run.status in (Status.FAILED, Status.CANCELED):
        return ("retry",)
    return ()


def job_anchor(job: str) -> str:
    """The id of a job's element on the run page (`needs` links point at it)."""
    return "job-" + quote(job, safe="")


def job_path(run_id: str, job: str) -> str:
    """The job's part of a URL path: the name URL-encoded, slashes included."""
    return f"{run_id}/jobs/{quote(job, safe='')}"


def safe_link(url: object) -> str | None:
    """`url` when it is an http(s) URL, else None (a `javascript:` link never reaches an
    href)."""
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return url
    return None


def trigger_facts(run: RunRecord) -> tuple[tuple[str, str], ...]:
    """What started the run: event, ref, sha, the commit message's first line and, for a
    pull/merge request, its number and title, as label/value pairs. (Webhooks do not record
    who pushed: there is no "who" to show.)"""
    facts = [("event", str(run.event)), ("ref", run.ref), ("sha", run.sha)]
    message = run.trigger.get("message")
    if isinstance(message, str) and message.strip():
        facts.append(("commit", message.strip().splitlines()[0]))
    change = run.trigger.get("change")
    if isinstance(change, Mapping):
        facts.append(("request", f"#{change.get('number')} {change.get('title') or ''}".strip()))
    return tuple(facts)
