"""`rules:changes: {paths, compare_to}`: translated onto the Rule, the refs the edge must
look up (`compare_to_refs`), and the planner's verdict from Event.changes_by_ref."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind, Plan
from conveyor.plan import compare_to_refs, plan

from .helpers import errors_of, parse

PIPELINE = """
variables:
  BASE: release
docs:
  script: x
  rules:
    - changes:
        paths: [docs/**/*]
        compare_to: main
code:
  script: x
  variables: {TARGET: $BASE}
  rules:
    - changes: {paths: ["src/**/*"], compare_to: "$TARGET"}
pushed:
  script: x
  rules:
    - changes: [src/**/*]
"""


def plan_for(
    changes_by_ref: Mapping[str, tuple[str, ...]] | None,
    kind: EventKind = EventKind.PUSH,
    text: str = PIPELINE,
) -> Plan:
    return plan(
        parse(text),
        Event(
            kind=kind,
            ref="feature",
            sha="a" * 40,
            changed_files=("docs/a.md",),
            changes_by_ref=changes_by_ref,
        ),
    )


def test_compare_to_is_kept_on_the_rule() -> None:
    rules = parse(PIPELINE).job("docs").rules
    assert rules is not None
    assert (rules[0].changes, rules[0].compare_to) == (("docs/**/*",), "main")


def test_compare_to_refs_expands_pipeline_and_job_variables() -> None:
    event = Event(kind=EventKind.PUSH, ref="feature", sha="a" * 40)
    assert compare_to_refs(parse(PIPELINE), event) == ("main", "release")


def test_compare_to_uses_the_changes_since_the_ref() -> None:
    result = plan_for({"main": ("src/x.py",), "release": ("src/y.py",)})
    assert [job.name for job in result.jobs] == ["code"]
    assert {e.name: e.reason for e in result.excluded} == {
        "docs": 'no changed file since main matches ["docs/**/*"]',
        "pushed": 'no changed file matches ["src/**/*"]',
    }


@pytest.mark.parametrize("kind", [EventKind.TAG, EventKind.MANUAL, EventKind.SCHEDULE])
def test_compare_to_is_evaluated_for_every_event(kind: EventKind) -> None:
    result = plan_for({"main": ("docs/b.md",), "release": ()}, kind)
    assert "docs" in [job.name for job in result.jobs]
    assert "code" in [e.name for e in result.excluded]


def test_compare_to_holds_when_changes_were_not_looked_up() -> None:
    assert [job.name for job in plan_for(None).jobs] == ["docs", "code"]


def test_compare_to_of_an_invalid_ref_refuses_the_plan_at_its_rule() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_for({"main": ()})
    assert [str(p) for p in caught.value.problems] == [
        '.gitlab-ci.yml:14:7: job "code": rules:changes:compare_to is not a valid ref: '
        '"release" (name a branch, tag or commit that exists in the repository)'
    ]


def test_workflow_compare_to_of_an_invalid_ref_refuses_the_plan() -> None:
    text = "workflow:\n  rules:\n    - changes: {paths: [a], compare_to: nope}\n" + PIPELINE
    with pytest.raises(ConfigError, match=r"workflow:rules: rules:changes:compare_to is not a"):
        plan_for({"main": (), "release": ()}, text=text)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            "{paths: [a], compare: main}",
            '4:29: job "job": changes: unknown key compare (did you mean "compare_to"?)',
        ),
        (
            "{paths: [a], compare_to: [main]}",
            '4:41: job "job": changes:compare_to must be a branch, tag or commit, got list',
        ),
        ("{compare_to: main}", '4:16: job "job": changes: a mapping needs paths: [...]'),
    ],
    ids=["unknown-key", "not-a-string", "no-paths"],
)
def test_changes_mapping_problems(changes: str, problem: str) -> None:
    text = f"job:\n  script: x\n  rules:\n    - changes: {changes}\n"
    assert errors_of(text) == [f".gitlab-ci.yml:{problem}"]
