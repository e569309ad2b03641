"""`rules:needs`: translated and checked like a job's `needs`, applied by the planner when
its rule matches (the job's own needs are replaced)."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind, Need, Plan
from conveyor.plan import plan

from .helpers import errors_of, parse

PIPELINE = """
stages: [build, test]
build:
  stage: build
  script: echo build
lint:
  stage: build
  script: echo lint
tests:
  stage: test
  script: echo tests
  needs: [lint]
  rules:
    - if: $CI_COMMIT_TAG
      needs: []
    - if: $CI_COMMIT_BRANCH == "main"
      needs: [build, {job: lint, artifacts: false}]
    - if: $CI_COMMIT_BRANCH == "optional"
      needs: [{job: build, optional: true}]
    - when: on_success
"""


def plan_for(text: str, kind: EventKind, ref: str) -> Plan:
    return plan(parse(text), Event(kind=kind, ref=ref, sha="a" * 40))


def test_rules_needs_are_translated_like_needs() -> None:
    rules = parse(PIPELINE).job("tests").rules
    assert rules is not None
    assert [rule.needs for rule in rules] == [
        (),
        (Need("build"), Need("lint", artifacts=False)),
        (Need("build", optional=True),),
        None,
    ]


@pytest.mark.parametrize(
    ("kind", "ref", "depends_on", "artifacts_from"),
    [
        (EventKind.TAG, "v1", (), ()),
        (EventKind.PUSH, "main", ("build", "lint"), ("build",)),
        (EventKind.PUSH, "feature", ("lint",), ("lint",)),
    ],
    ids=["empty-needs", "replaced-needs", "no-rule-needs-keeps-job-needs"],
)
def test_matching_rule_replaces_the_job_needs(
    kind: EventKind, ref: str, depends_on: tuple[str, ...], artifacts_from: tuple[str, ...]
) -> None:
    tests = plan_for(PIPELINE, kind, ref).job("tests")
    assert (tests.depends_on, tests.artifacts_from) == (depends_on, artifacts_from)


def test_rules_needs_on_a_job_without_needs_replaces_stage_order() -> None:
    text = PIPELINE.replace("  needs: [lint]\n", "")
    assert plan_for(text, EventKind.PUSH, "feature").job("tests").depends_on == ("build", "lint")
    assert plan_for(text, EventKind.TAG, "v1").job("tests").depends_on == ()


def test_rules_needs_on_an_excluded_job_refuses_the_plan_unless_optional() -> None:
    text = PIPELINE.replace("  script: echo build\n", "  script: echo build\n  when: manual\n")
    text = text.replace("build:\n  stage: build", "build:\n  stage: build\n  rules: [{if: $NO}]")
    with pytest.raises(ConfigError, match=r'job "tests" needs "build", which is not in this'):
        plan_for(text, EventKind.PUSH, "main")
    assert plan_for(text, EventKind.PUSH, "optional").job("tests").depends_on == ()


def test_rules_needs_name_every_parallel_copy() -> None:
    text = PIPELINE.replace("  script: echo build\n", "  script: echo build\n  parallel: 2\n")
    rules = parse(text).job("tests").rules
    assert rules is not None
    assert rules[1].needs == (Need("build 1/2"), Need("build 2/2"), Need("lint", artifacts=False))


@pytest.mark.parametrize(
    ("needs", "problem"),
    [
        ("[biuld]", 'job "tests" needs "biuld", which is not a job (did you mean "build"?)'),
        ("[later]", 'job "tests" (stage test) needs "later" of the later stage deploy'),
        (
            "[{job: build, artefacts: false}]",
            'job "tests": rules:needs: unknown needs key artefacts (did you mean "artifacts"?)',
        ),
        ("build", 'job "tests": rules:needs: needs must be a list, got string'),
    ],
    ids=["unknown-job", "later-stage", "unknown-key", "not-a-list"],
)
def test_rules_needs_problems(needs: str, problem: str) -> None:
    text = (
        "stages: [build, test, deploy]\n"
        "build:\n  stage: build\n  script: x\n"
        "later:\n  stage: deploy\n  script: x\n"
        f"tests:\n  stage: test\n  script: x\n  rules:\n    - needs: {needs}\n"
    )
    problems = errors_of(text)
    assert len(problems) == 1 and problem in problems[0], problems
    assert problems[0].startswith(".gitlab-ci.yml:12:"), problems


def test_rules_needs_is_not_a_workflow_rule_keyword() -> None:
    problems = errors_of("workflow:\n  rules: [{needs: []}]\njob:\n  script: x\n")
    assert problems == [".gitlab-ci.yml:2:12: workflow:rules: unknown rule keyword needs"]
