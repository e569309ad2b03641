"""Native `on:` with branch filters: the branches a push must be to, or a pull/merge
request must target."""

from __future__ import annotations

import pytest

from conveyor.config.native import parse_native
from conveyor.errors import ConfigError
from conveyor.model import ChangeRequest, Event, EventKind
from conveyor.plan import plan

TEXT = """\
on:
  push: {branches: [main, "release/*"]}
  pull_request: {branches: [main]}
  tag:
jobs:
  a: {run: x}
"""


def _change(target: str) -> ChangeRequest:
    return ChangeRequest(number=1, source_branch="feature", target_branch=target)


def test_on_mapping_reads_events_and_branches() -> None:
    pipeline = parse_native(TEXT, ".conveyor.yml")
    assert pipeline.events == frozenset(
        {EventKind.PUSH, EventKind.PULL_REQUEST, EventKind.MERGE_REQUEST, EventKind.TAG}
    )
    assert pipeline.event_branches == {
        EventKind.PUSH: ("main", "release/*"),
        EventKind.PULL_REQUEST: ("main",),
        EventKind.MERGE_REQUEST: ("main",),
    }


@pytest.mark.parametrize(
    ("event", "excluded"),
    [
        (Event(kind=EventKind.PUSH, ref="release/1.2"), None),
        (
            Event(kind=EventKind.PUSH, ref="dev"),
            'ref "dev" matches none of on.push.branches: ["main", "release/*"]',
        ),
        (Event(kind=EventKind.PULL_REQUEST, ref="feature", change=_change("main")), None),
        (Event(kind=EventKind.MERGE_REQUEST, ref="feature", change=_change("main")), None),
        (
            Event(kind=EventKind.PULL_REQUEST, ref="main", change=_change("dev")),
            'target branch "dev" matches none of on.pull_request.branches: ["main"]',
        ),
        (Event(kind=EventKind.TAG, ref="v1"), None),
    ],
)
def test_on_branches_decide_the_pipeline(event: Event, excluded: str | None) -> None:
    result = plan(parse_native(TEXT, ".conveyor.yml"), event)
    assert result.workflow_excluded == excluded


def test_on_mapping_problems_have_positions() -> None:
    text = "on:\n  pushh: {branches: [main]}\n  push: {branchez: [main]}\njobs:\n  a: {run: x}\n"
    with pytest.raises(ConfigError) as caught:
        parse_native(text, ".conveyor.yml")
    assert [str(p) for p in caught.value.problems] == [
        '.conveyor.yml:2:3: on.pushh: unknown event "pushh" (did you mean "push"?) '
        "(use push, tag, manual, schedule, merge_request_event, pull_request)",
        '.conveyor.yml:3:10: on.push: unknown key "branchez" (did you mean "branches"?)',
    ]
