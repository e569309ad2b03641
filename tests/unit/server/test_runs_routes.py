"""Pure parts of the runs API: trigger body validation, job outcome for SSE, paging, SSE
framing, did-you-mean."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.server.runs import TriggerBody, job_outcome
from conveyor.server.serialize import run_page
from conveyor.server.sse import format_comment, format_event


def make_run(status: Status, *jobs: tuple[str, Status], run_id: str = "r1") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        repo="acme/app",
        ref="main",
        sha="a" * 40,
        event=EventKind.PUSH,
        status=status,
        created_at=datetime(2026, 11, 23, tzinfo=UTC),
        jobs=tuple(JobRecord(name=n, stage="s", status=s) for n, s in jobs),
    )


def test_trigger_body_defaults_to_manual_event() -> None:
    body = TriggerBody.model_validate({"repo": "acme/app", "ref": "main"})
    assert (body.event, body.sha, body.variables) == (EventKind.MANUAL, None, {})


@pytest.mark.parametrize(
    "data",
    [
        {"repo": "acme/app", "ref": "main", "sha": "xyz"},
        {"repo": "acme/app", "ref": "main", "variables": {"BAD-NAME": "v"}},
        {"repo": "acme/app", "ref": "main", "surprise": 1},
        {"repo": "", "ref": "main"},
        {"repo": "acme/app", "ref": "main", "event": "explode"},
    ],
)
def test_trigger_body_rejects(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TriggerBody.model_validate(data)


def test_job_outcome_none_while_job_runs() -> None:
    assert job_outcome(make_run(Status.RUNNING, ("test", Status.RUNNING)), "test") is None


def test_job_outcome_is_the_job_status_once_final() -> None:
    assert job_outcome(make_run(Status.RUNNING, ("test", Status.FAILED)), "test") == "failed"


def test_job_outcome_waits_for_a_manual_job_while_the_run_goes_on() -> None:
    assert job_outcome(make_run(Status.RUNNING, ("deploy", Status.MANUAL)), "deploy") is None


def test_job_outcome_follows_the_run_when_the_job_never_appeared() -> None:
    assert job_outcome(make_run(Status.CANCELED), "test") == "canceled"


def test_job_outcome_of_a_vanished_run_ends_the_follow() -> None:
    assert job_outcome(None, "test") == "canceled"


def test_run_page_signals_more_with_next_offset() -> None:
    runs = [make_run(Status.SUCCESS, run_id=f"r{i}") for i in range(3)]
    page = run_page(runs, limit=2, offset=4)
    assert ([r["run_id"] for r in page["runs"]], page["next_offset"]) == (["r0", "r1"], 6)
    assert run_page(runs[:2], limit=2, offset=4)["next_offset"] is None


def test_format_event_frames_id_event_and_data() -> None:
    assert format_event(b'{"a":1}', event="end", event_id="7") == (
        b'event: end\nid: 7\ndata: {"a":1}\n\n'
    )
    assert format_event(b"x") == b"data: x\n\n"
    assert format_comment("keep-alive") == b": keep-alive\n\n"
