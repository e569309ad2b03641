"""`inherit:default` and `inherit:variables`: translation, checks, and what the planner and
the job environment make of them."""

from __future__ import annotations

import pytest

from conveyor.engine.env import job_environment
from conveyor.model import Event, EventKind
from conveyor.plan import plan

from .helpers import errors_of, parse

GLOBALS = """
variables:
  DOMAIN: example.com
  KEY: value
default:
  before_script: [echo before]
  after_script: [echo after]
  retry: 2
"""


def test_inherit_default_list_keeps_only_the_listed_keywords() -> None:
    job = parse(
        GLOBALS + "job:\n  inherit: {default: [after_script, retry]}\n  script: echo own\n"
    ).job("job")
    assert (job.steps[0].run, job.after_steps[0].run, job.retry.max) == (
        "echo own",
        "echo after",
        2,
    )


def test_inherit_default_false_keeps_none() -> None:
    job = parse(GLOBALS + "job:\n  inherit: {default: false}\n  script: echo own\n").job("job")
    assert (job.steps[0].run, job.after_steps, job.retry.max) == ("echo own", (), 0)


def test_inherit_variables_is_recorded_on_the_job() -> None:
    pipeline = parse(
        GLOBALS
        + "a:\n  script: x\n"
        + "b:\n  inherit: {variables: false}\n  script: x\n"
        + "c:\n  inherit: {variables: [KEY]}\n  script: x\n"
    )
    assert [pipeline.job(name).inherit_variables for name in "abc"] == [
        True,
        False,
        frozenset({"KEY"}),
    ]


@pytest.mark.parametrize(
    ("inherit", "problem"),
    [
        (
            "{default: [before_scirpt]}",
            '10:23: job "job": inherit:default names before_scirpt, which is not a default: '
            'keyword (did you mean "before_script"?)',
        ),
        (
            "{defaults: false}",
            '10:13: job "job": unknown inherit keyword defaults (did you mean "default"?)',
        ),
        (
            "{variables: yes please}",
            '10:24: job "job": inherit:variables must be true, false or a list of names, '
            "got string",
        ),
        (
            "[default]",
            '10:12: job "job": inherit must be a mapping with default and/or variables, got list',
        ),
    ],
    ids=["unknown-default-keyword", "unknown-key", "variables-type", "not-a-mapping"],
)
def test_inherit_problems_name_the_line_and_a_close_name(inherit: str, problem: str) -> None:
    problems = errors_of(GLOBALS + f"job:\n  inherit: {inherit}\n  script: x\n")
    assert problems == [f".gitlab-ci.yml:{problem}"]


def test_inherit_variables_naming_no_global_variable_is_a_warning() -> None:
    pipeline = parse(GLOBALS + "job:\n  inherit: {variables: [DOMAIM]}\n  script: x\n")
    assert pipeline.warnings == (
        '.gitlab-ci.yml:10:25: warning: job "job": inherit:variables names DOMAIM, which is '
        'not a global variable (did you mean "DOMAIN"?) (it has no effect)',
    )


WORKFLOW = """
variables:
  DOMAIN: example.com
  KEY: value
workflow:
  rules:
    - variables: {FROM_WORKFLOW: wf}
"""


def test_rules_if_sees_only_inherited_variables() -> None:
    result = plan(
        parse(
            WORKFLOW
            + "all:\n  script: x\n  rules: [{if: $KEY && $FROM_WORKFLOW}]\n"
            + "some:\n  inherit: {variables: [DOMAIN]}\n  script: x\n"
            + "  rules: [{if: $KEY}, {if: $FROM_WORKFLOW}]\n"
            + "none:\n  inherit: {variables: false}\n  script: x\n  rules: [{if: $DOMAIN}]\n"
        ),
        Event(kind=EventKind.PUSH, ref="main", sha="a" * 40),
    )
    assert ([p.name for p in result.jobs], [e.name for e in result.excluded]) == (
        ["all"],
        ["some", "none"],
    )


def test_job_environment_has_only_inherited_pipeline_variables() -> None:
    result = plan(
        parse(
            WORKFLOW
            + "all:\n  script: x\n"
            + "some:\n  inherit: {variables: [KEY, FROM_WORKFLOW]}\n  script: x\n"
            + "  variables: {OWN: $DOMAIN-own}\n"
            + "none:\n  inherit: {variables: false}\n  script: x\n"
        ),
        Event(kind=EventKind.PUSH, ref="main", sha="a" * 40, variables={"DOMAIN": "cli"}),
    )
    names = ("DOMAIN", "KEY", "FROM_WORKFLOW", "OWN", "CI_COMMIT_SHA")

    def seen(job: str) -> dict[str, str]:
        env = job_environment(
            result,
            result.job(job),
            base_env={},
            run_id="r",
            pipeline_number=1,
            job_number=1,
            attempt=1,
            project_dir="/w",
        )
        return {name: env[name] for name in names if name in env}

    assert [seen(job) for job in ("all", "some", "none")] == [
        {"DOMAIN": "cli", "KEY": "value", "FROM_WORKFLOW": "wf", "CI_COMMIT_SHA": "a" * 40},
        {"KEY": "value", "FROM_WORKFLOW": "wf", "OWN": "-own", "CI_COMMIT_SHA": "a" * 40},
        {"CI_COMMIT_SHA": "a" * 40},
    ]
