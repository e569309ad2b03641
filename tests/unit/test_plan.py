"""The planner: rules, reasons, edges, artifacts, order, variables."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.config.conditions import rule_mismatch
from conveyor.config.native import parse_native
from conveyor.errors import ConfigError
from conveyor.model import (
    Event,
    EventKind,
    Excluded,
    Job,
    Mark,
    Need,
    Pipeline,
    Rule,
    Step,
    When,
)
from conveyor.plan import plan

PUSH = Event(EventKind.PUSH, ref="main", sha="a" * 40)


def native(text: str) -> Pipeline:
    return parse_native(textwrap.dedent(text), "p.yml")


def job(name: str, **fields: object) -> Job:
    return Job(name=name, stage=str(fields.pop("stage", "test")), steps=(Step("s", "true"),),
               mark=Mark("p.yml", 1, 1), **fields)  # type: ignore[arg-type]  # fmt: skip


def reasons(result_plan: object) -> dict[str, str]:
    return {item.name: item.reason for item in result_plan.excluded}  # type: ignore[attr-defined]


def test_plan_orders_needs_stably_by_file_order() -> None:
    pipeline = native(
        """
        jobs:
          deploy: {run: x, needs: [test]}
          test: {run: x, needs: [build]}
          lint: {run: x, needs: []}
          build: {run: x, needs: []}
        """
    )
    result = plan(pipeline, PUSH)
    assert [j.name for j in result.jobs] == ["lint", "build", "test", "deploy"]
    assert result.job("deploy").depends_on == ("test",)
    assert result.job("deploy").artifacts_from == ("test",)


def test_plan_without_needs_waits_for_earlier_stages() -> None:
    pipeline = native(
        """
        stages: [build, test, deploy]
        jobs:
          d: {stage: deploy, run: x}
          t1: {stage: test, run: x}
          t2: {stage: test, run: x}
          b: {stage: build, run: x}
        """
    )
    result = plan(pipeline, PUSH)
    assert [j.name for j in result.jobs] == ["b", "t1", "t2", "d"]
    assert result.job("t1").depends_on == ("b",)
    assert result.job("d").depends_on == ("b", "t1", "t2")
    assert result.job("d").artifacts_from == ("b", "t1", "t2")


def test_plan_excluded_reasons() -> None:
    pipeline = native(
        """
        jobs:
          on_tag: {run: x, when: {on: [tag]}}
          main_only: {run: x, when: {ref: [main]}}
          docs: {run: x, when: {changes: ["docs/**"]}}
          docker: {run: x, when: {exists: [Dockerfile]}}
          flag: {run: x, when: {if: '$X == "1"'}}
          always: {run: x}
        """
    )
    event = Event(EventKind.PUSH, ref="feat/x", changed_files=("src/a.py",), files=("README",))
    result = plan(pipeline, event)
    assert [j.name for j in result.jobs] == ["always"]
    assert reasons(result) == {
        "on_tag": "event push not in on: [tag]",
        "main_only": 'ref "feat/x" matches none of ["main"]',
        "docs": 'no changed file matches ["docs/**"]',
        "docker": 'no file matches ["Dockerfile"]',
        "flag": 'if "$X == \\"1\\"" is false',
    }


def test_plan_unknown_changes_and_files_hold() -> None:
    pipeline = native("jobs: {d: {run: x, when: {changes: [docs/**], exists: [x]}}}")
    assert [j.name for j in plan(pipeline, PUSH).jobs] == ["d"]


def test_plan_changes_match() -> None:
    pipeline = native("jobs: {d: {run: x, when: {changes: [docs/**]}}}")
    event = Event(EventKind.PUSH, changed_files=("docs/a/b.md",))
    assert [j.name for j in plan(pipeline, event).jobs] == ["d"]


def test_plan_if_sees_predefined_pipeline_job_and_event_variables() -> None:
    pipeline = native(
        """
        env: {TARGET: "$CONVEYOR_REF-env", LEVEL: pipeline}
        jobs:
          a: {run: x, when: {if: '$TARGET == "main-env"'}}
          b: {run: x, env: {LEVEL: job}, when: {if: '$LEVEL == "job"'}}
          c: {run: x, when: {if: '$FROM_CLI == "yes"'}}
          d: {run: x, env: {FROM_CLI: job}, when: {if: '$FROM_CLI == "yes"'}}
        """
    )
    event = Event(EventKind.PUSH, ref="main", variables={"FROM_CLI": "yes"})
    result = plan(pipeline, event)
    assert [j.name for j in result.jobs] == ["a", "b", "c", "d"]
    assert result.variables["TARGET"] == "$CONVEYOR_REF-env"
    assert result.variables["FROM_CLI"] == "yes"
    assert result.variables["CONVEYOR_EVENT"] == "push"


def test_plan_pipeline_on_excludes_whole_pipeline() -> None:
    pipeline = native("on: [push]\njobs: {a: {run: x}}")
    result = plan(pipeline, Event(EventKind.TAG, ref="v1"))
    assert result.jobs == ()
    assert result.workflow_excluded == "event tag not in the pipeline's on: [push]"


def test_plan_workflow_rules() -> None:
    base = native("jobs: {a: {run: x}}")
    rules = (
        Rule(if_expr='$CONVEYOR_REF == "skip"', when=When.NEVER, mark=Mark("p", 3, 5)),
        Rule(refs=("main", "release/*"), variables={"DEPLOY": "yes"}),
    )
    pipeline = Pipeline(**{**{s: getattr(base, s) for s in Pipeline.__slots__},
                           "workflow": rules})  # type: ignore[arg-type]  # fmt: skip
    ok = plan(pipeline, Event(ref="release/1"))
    assert ok.variables["DEPLOY"] == "yes"
    assert [j.name for j in ok.jobs] == ["a"]
    never = plan(pipeline, Event(ref="skip"))
    assert (
        never.workflow_excluded
        == "workflow rules excluded the pipeline: rule at line 3 says when: never"
    )
    none = plan(pipeline, Event(ref="dev"))
    assert none.workflow_excluded is not None
    assert none.workflow_excluded.startswith(
        "workflow rules excluded the pipeline: no rule matched: "
    )


def test_plan_first_matching_rule_decides_overrides() -> None:
    rules = (
        Rule(events=frozenset({EventKind.TAG}), when=When.NEVER),
        Rule(refs=("main",), when=When.DELAYED, allow_failure=True, start_in_s=30.0,
             variables={"V": "1"}),
        Rule(when=When.MANUAL),
    )  # fmt: skip
    pipeline = Pipeline("p", "p.yml", (job("a", rules=rules),))
    main = plan(pipeline, PUSH).job("a")
    assert (main.when, main.allow_failure, main.start_in_s, dict(main.variables)) == (
        When.DELAYED, True, 30.0, {"V": "1"})  # fmt: skip
    assert plan(pipeline, Event(ref="dev")).job("a").when is When.MANUAL
    assert reasons(plan(pipeline, Event(EventKind.TAG))) == {"a": "rule 1 says when: never"}


def test_plan_no_rule_matched_lists_reasons() -> None:
    rules = (Rule(refs=("main",)), Rule(events=frozenset({EventKind.TAG})))
    pipeline = Pipeline("p", "p.yml", (job("a", rules=rules),))
    assert reasons(plan(pipeline, Event(ref="dev"))) == {
        "a": 'no rule matched: ref "dev" matches none of ["main"]; event push not in on: [tag]'
    }


def test_plan_empty_rules_exclude() -> None:
    pipeline = Pipeline("p", "p.yml", (job("a", rules=()),))
    assert reasons(plan(pipeline, PUSH)) == {"a": "no rule matched (rules is empty)"}


def test_plan_static_when_never_excludes() -> None:
    pipeline = Pipeline("p", "p.yml", (job("a", when=When.NEVER), job("b")))
    result = plan(pipeline, PUSH)
    assert result.excluded == (Excluded("a", "when: never"),)


def test_plan_invalid_expression_excludes_with_reason() -> None:
    pipeline = Pipeline("p", "p.yml", (job("a", rules=(Rule(if_expr="$A =="),)),))
    assert "is not a valid expression" in reasons(plan(pipeline, PUSH))["a"]


def test_plan_drops_optional_need_on_excluded_job() -> None:
    pipeline = native(
        """
        jobs:
          b: {run: x, when: {ref: release}}
          r: {run: x, needs: [{job: b, optional: true}]}
        """
    )
    result = plan(pipeline, PUSH)
    assert result.job("r").depends_on == ()


def test_plan_hard_need_on_excluded_job_is_config_error() -> None:
    pipeline = native("jobs:\n  b: {run: x, when: {ref: release}}\n  r: {run: x, needs: [b]}\n")
    with pytest.raises(ConfigError) as caught:
        plan(pipeline, PUSH)
    assert str(caught.value) == (
        'p.yml:3:6: job "r" needs "b", which is not in this pipeline '
        '(ref "main" matches none of ["release"]); make the need optional or give both '
        "jobs the same conditions"
    )


def test_plan_artifacts_from_dependencies_and_needs_flags() -> None:
    pipeline = Pipeline(
        "p",
        "p.yml",
        (
            job("a", needs=()),
            job("b", needs=()),
            job("c", needs=(Need("a"), Need("b", artifacts=False))),
            job("d", needs=(Need("a"),), dependencies=("b", "ghost")),
        ),
    )
    result = plan(pipeline, PUSH)
    assert result.job("c").artifacts_from == ("a",)
    assert result.job("c").depends_on == ("a", "b")
    assert result.job("d").artifacts_from == ("b",)


def test_plan_manual_job_is_planned_as_manual() -> None:
    result = plan(native("jobs: {a: {run: x, manual: true}}"), PUSH)
    assert result.job("a").when is When.MANUAL


def test_plan_cycle_in_hand_built_pipeline_is_config_error() -> None:
    pipeline = Pipeline("p", "p.yml", (job("a", needs=(Need("b"),)), job("b", needs=(Need("a"),))))
    with pytest.raises(ConfigError, match="cycle in needs: a -> b -> a"):
        plan(pipeline, PUSH)


def test_rule_mismatch_none_when_all_hold() -> None:
    rule = Rule(events=frozenset({EventKind.PUSH}), refs=("ma*",), if_expr="$A")
    assert rule_mismatch(rule, PUSH, {"A": "1"}) is None


def test_plan_gitlab_tag_pipeline_changes_always_hold() -> None:
    rule = Rule(changes=("docs/**",))
    event = Event(EventKind.TAG, ref="v1", changed_files=("src/a.py",))
    gitlab = Pipeline("p", "p.yml", (job("a", rules=(rule,)),), flavor="gitlab")
    native_pipeline = Pipeline("p", "p.yml", (job("a", rules=(rule,)),))
    assert [j.name for j in plan(gitlab, event).jobs] == ["a"]
    assert plan(gitlab, event).event == event
    assert reasons(plan(native_pipeline, event)) == {"a": 'no changed file matches ["docs/**"]'}
