"""Event <-> trigger round trip (conveyor.triggers, pure)."""

from __future__ import annotations

import orjson

from conveyor.masking import MASK
from conveyor.model import Event, EventKind
from conveyor.triggers import event_from_trigger, event_to_trigger, hide_secret_variables


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
