"""Event <-> trigger round trip (conveyor.triggers, pure)."""

from __future__ import annotations

import orjson
import pytest

from conveyor.masking import MASK
from conveyor.model import ChangeRequest, Event, EventKind
from conveyor.triggers import (
    event_from_trigger,
    event_to_trigger,
    hide_secret_variables,
    needs_head_message,
    skip_ci_reason,
)


def test_trigger_round_trip_keeps_the_event() -> None:
    event = Event(
        kind=EventKind.TAG,
        ref="v1",
        sha="c" * 40,
        before_sha="d" * 40,
        repo="acme/app",
        message="release",
        default_branch="main",
        variables={"DEPLOY": "yes"},
    )
    data = orjson.loads(orjson.dumps(event_to_trigger(event)))
    assert event_from_trigger(data) == event


def test_trigger_missing_fields_take_defaults() -> None:
    assert event_from_trigger({}) == Event()


def test_hide_secret_variables_masks_and_names_secrets() -> None:
    trigger = {"kind": "push", "variables": {"A": "tok-123456", "B": "x tok-123456 y", "C": "1"}}
    hidden = hide_secret_variables(trigger, {"TOKEN": "tok-123456", "ONE": "1"})
    assert hidden["variables"] == {"A": MASK, "B": f"x {MASK} y", "C": "1"}
    assert hidden["secret_variables"] == {"A": "TOKEN", "C": "ONE"}


def test_event_from_trigger_reads_named_secrets_again() -> None:
    data = {"variables": {"A": MASK}, "secret_variables": {"A": "TOKEN"}}
    assert event_from_trigger(data, {"TOKEN": "tok-123456"}).variables == {"A": "tok-123456"}


def test_trigger_round_trip_keeps_the_change_request() -> None:
    change = ChangeRequest(
        number=3,
        source_branch="f",
        target_branch="main",
        title="t",
        is_fork=True,
        source_repo="x/y",
        labels=("a",),
        url="https://h/x",
    )
    event = Event(kind=EventKind.PULL_REQUEST, ref="f", sha="a" * 40, change=change)
    stored = orjson.loads(orjson.dumps(event_to_trigger(event)))
    assert event_from_trigger(stored) == event


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("fix docs [skip ci]", "skipped: the head commit's message says [skip ci]"),
        ("wip\n\n[CI SKIP] later", "skipped: the head commit's message says [CI SKIP]"),
        ("skip ci please", None),
        ("", None),
    ],
)
def test_skip_ci_reason_reads_the_head_commit_message(message: str, reason: str | None) -> None:
    assert skip_ci_reason(Event(message=message)) == reason


@pytest.mark.parametrize("kind", [EventKind.MANUAL, EventKind.SCHEDULE])
def test_skip_ci_does_not_skip_runs_asked_for_by_hand_or_schedule(kind: EventKind) -> None:
    assert skip_ci_reason(Event(kind=kind, message="[skip ci]")) is None


def test_a_delivery_without_a_message_needs_the_head_commit_read() -> None:
    assert needs_head_message(Event(kind=EventKind.PULL_REQUEST)) is True
    assert needs_head_message(Event(kind=EventKind.PUSH)) is True
    assert needs_head_message(Event(kind=EventKind.PULL_REQUEST, message="fix")) is False
    assert needs_head_message(Event(kind=EventKind.MANUAL)) is False
    assert needs_head_message(Event(kind=EventKind.SCHEDULE)) is False
