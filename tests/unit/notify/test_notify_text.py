"""Pure parts of the notifiers: states, descriptions, Slack decisions and messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.notify.base import MAX_DESCRIPTION, describe_run, format_duration, run_url
from conveyor.notify.github import github_state, github_status_body, status_context
from conveyor.notify.gitlab import gitlab_state, gitlab_status_body
from conveyor.notify.slack import previous_outcome, slack_kind, slack_message

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_run(
    status: Status = Status.SUCCESS,
    *,
    run_id: str = "r2",
    number: int = 2,
    minutes: int = 10,
    jobs: tuple[JobRecord, ...] = (),
    reason: str | None = None,
    ref: str = "main",
) -> RunRecord:
    created = T0 + timedelta(minutes=minutes)
    return RunRecord(
        run_id=run_id,
        repo="acme/app",
        ref=ref,
        sha="a" * 40,
        event=EventKind.PUSH,
        status=status,
        created_at=created,
        started_at=created,
        finished_at=created + timedelta(seconds=83) if status.is_final else None,
        reason=reason,
        number=number,
        pipeline_name="ci",
        jobs=jobs,
    )


FAILED_TEST = JobRecord(name="test [PY=3.12]", stage="test", status=Status.FAILED)
ALLOWED = JobRecord(name="lint", stage="test", status=Status.FAILED, allow_failure=True)


def test_run_url_joins_without_double_slash() -> None:
    assert run_url("http://ci.example/", "r1") == "http://ci.example/api/v1/runs/r1"


def test_format_duration_units() -> None:
    assert [
        format_duration(None),
        format_duration(6),
        format_duration(83),
        format_duration(3723),
    ] == [
        "",
        "6s",
        "1m 23s",
        "1h 2m 3s",
    ]


def test_describe_run_names_failed_jobs_but_not_allowed_failures() -> None:
    run = make_run(Status.FAILED, jobs=(FAILED_TEST, ALLOWED))
    assert describe_run(run, "finished") == "Run #2 failed in 1m 23s: test [PY=3.12]"


def test_describe_run_stays_within_github_limit() -> None:
    jobs = tuple(
        JobRecord(name=f"job-with-a-long-name-{i}", stage="t", status=Status.FAILED)
        for i in range(20)
    )
    text = describe_run(make_run(Status.FAILED, jobs=jobs), "finished")
    assert len(text) == MAX_DESCRIPTION
    assert text.endswith("…")


def test_github_state_failure_when_a_job_failed() -> None:
    assert github_state(make_run(Status.FAILED, jobs=(FAILED_TEST,)), "finished") == "failure"


def test_github_state_error_when_conveyor_could_not_run_it() -> None:
    assert github_state(make_run(Status.FAILED, reason="checkout failed"), "finished") == "error"
    assert github_state(make_run(Status.CANCELED), "finished") == "error"


def test_github_state_pending_at_start() -> None:
    assert github_state(make_run(Status.RUNNING), "started") == "pending"


def test_github_body_fields() -> None:
    body = github_status_body(make_run(), "finished", target_url="http://x/api/v1/runs/r2")
    assert body == {
        "state": "success",
        "target_url": "http://x/api/v1/runs/r2",
        "description": "Run #2 passed in 1m 23s",
        "context": "conveyor/ci",
    }


def test_status_context_without_pipeline_name() -> None:
    assert status_context(replace(make_run(), pipeline_name="")) == "conveyor/pipeline"


def test_gitlab_states() -> None:
    finished = [
        gitlab_state(make_run(s), "finished")
        for s in (Status.SUCCESS, Status.FAILED, Status.CANCELED)
    ]
    assert [gitlab_state(make_run(Status.RUNNING), "started"), *finished] == [
        "running",
        "success",
        "failed",
        "canceled",
    ]


def test_gitlab_body_uses_name_and_ref() -> None:
    body = gitlab_status_body(make_run(Status.FAILED), "finished", target_url="u")
    assert (body["name"], body["ref"], body["state"]) == ("conveyor/ci", "main", "failed")


def test_previous_outcome_skips_canceled_and_later_runs() -> None:
    current = make_run(Status.SUCCESS, run_id="r3", number=3, minutes=20)
    history = [
        make_run(Status.FAILED, run_id="r4", number=4, minutes=30),  # later: ignored
        current,
        make_run(Status.CANCELED, run_id="r2", number=2, minutes=10),
        make_run(Status.FAILED, run_id="r1", number=1, minutes=5),
    ]
    assert previous_outcome(current, history) is Status.FAILED


def test_previous_outcome_ignores_other_refs() -> None:
    current = make_run(Status.SUCCESS, run_id="r3", number=3, minutes=20)
    history = [make_run(Status.FAILED, run_id="r1", number=1, minutes=5, ref="dev")]
    assert previous_outcome(current, history) is None


def test_slack_kind_recovery_only_after_failure() -> None:
    current = make_run(Status.SUCCESS, run_id="r3", number=3, minutes=20)
    after_failure = [make_run(Status.FAILED, run_id="r1", number=1)]
    after_success = [make_run(Status.SUCCESS, run_id="r1", number=1)]
    assert (slack_kind(current, after_failure), slack_kind(current, after_success)) == (
        "recovery",
        None,
    )


def test_slack_kind_respects_switches() -> None:
    assert slack_kind(make_run(Status.FAILED), [], on_failure=False) is None


def test_slack_message_has_link_jobs_and_duration() -> None:
    run = make_run(Status.FAILED, jobs=(FAILED_TEST,))
    text = slack_message(run, "failure", link="http://ci/api/v1/runs/r2")["text"]
    assert "<http://ci/api/v1/runs/r2|run #2>" in text
    assert "`test [PY=3.12]`" in text
    assert "1m 23s" in text


def test_slack_message_escapes_control_characters() -> None:
    job = JobRecord(name="a<b>&c", stage="t", status=Status.FAILED)
    text = slack_message(make_run(Status.FAILED, jobs=(job,)), "failure", link="l")["text"]
    assert "`a&lt;b&gt;&amp;c`" in text
