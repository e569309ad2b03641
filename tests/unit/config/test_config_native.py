"""The native format: every key mapped onto the model, defaults and matrices applied."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.config.native import DEFAULT_STAGE, parse_native
from conveyor.config.native_fields import parse_duration, step_name
from conveyor.model import (
    Artifacts,
    ArtifactWhen,
    EventKind,
    Mark,
    Need,
    Retry,
    Rule,
    Step,
    When,
)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_native(textwrap.dedent(text), ".conveyor.yml")


def test_parse_native_top_level_keys() -> None:
    pipeline = parse(
        """
        name: demo
        on: [push, tag]
        env: {GREETING: hello $USER, PY: 3.10, N: 3}
        secrets: [TOKEN, TOKEN]
        fail_fast: true
        concurrency: 4
        jobs:
          a: {run: "true"}
        """
    )
    assert pipeline.name == "demo"
    assert pipeline.flavor == "native"
    assert pipeline.events == frozenset({EventKind.PUSH, EventKind.TAG})
    assert dict(pipeline.env) == {"GREETING": "hello $USER", "PY": "3.10", "N": "3"}
    assert pipeline.secrets == ("TOKEN",)
    assert pipeline.fail_fast is True
    assert pipeline.concurrency == 4
    assert pipeline.file == ".conveyor.yml"


def test_parse_native_minimal_defaults() -> None:
    pipeline = parse("jobs:\n  a:\n    run: echo hi\n")
    (job,) = pipeline.jobs
    assert pipeline.name == ".conveyor.yml"
    assert pipeline.events is None
    assert pipeline.stages == (DEFAULT_STAGE,)
    assert job.stage == DEFAULT_STAGE
    assert job.steps == (Step(name="echo hi", run="echo hi"),)
    assert job.needs is None
    assert job.rules is None
    assert job.when is When.ON_SUCCESS
    assert job.shell == "bash"
    assert job.retry == Retry()
    assert job.mark == Mark(".conveyor.yml", 3, 5)


def test_parse_native_on_key_is_not_a_boolean() -> None:
    pipeline = parse("on: push\njobs: {a: {run: x}}\n")
    assert pipeline.events == frozenset({EventKind.PUSH})


def test_parse_native_defaults_apply_unless_job_overrides() -> None:
    pipeline = parse(
        """
        defaults: {timeout: 10m, retry: 2, shell: sh, allow_failure: true}
        jobs:
          a: {run: x}
          b: {run: x, timeout: 90s, retry: 0, shell: bash, allow_failure: false}
        """
    )
    a, b = pipeline.jobs
    assert (a.timeout_s, a.retry, a.shell, a.allow_failure) == (600.0, Retry(max=2), "sh", True)
    assert (b.timeout_s, b.retry, b.shell, b.allow_failure) == (90.0, Retry(), "bash", False)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("1h 30m", 5400.0), ("45", 45.0),
     ("1.5h", 5400.0), ("2m30s", 150.0)],
)  # fmt: skip
def test_parse_duration_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "10x", "1m1h", "forever", "\u00b9", "1\u00b2m"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


def test_parse_native_plain_number_timeout_is_seconds() -> None:
    (job,) = parse("jobs: {a: {run: x, timeout: 45}}").jobs
    assert job.timeout_s == 45.0


def test_parse_native_retry_mapping() -> None:
    (job,) = parse("jobs: {a: {run: x, retry: {max: 2, when: [timeout, 137], delay: 5s}}}").jobs
    assert job.retry == Retry(2, frozenset({"timeout"}), frozenset({137}), 5.0)


def test_parse_native_steps_strings_and_mappings() -> None:
    (job,) = parse(
        """
        jobs:
          a:
            steps:
              - |
                echo one
                echo two
              - name: lint
                run: ruff check
                timeout: 1m
                env: {X: "1"}
                workdir: src
        """
    ).jobs
    assert job.steps == (
        Step(name="echo one", run="echo one\necho two\n"),
        Step(name="lint", run="ruff check", timeout_s=60.0, env={"X": "1"}, workdir="src"),
    )


def test_step_name_shortens_long_commands() -> None:
    name = step_name("\n  " + "x" * 100)
    assert len(name) == 60
    assert name.endswith("…")


def test_parse_native_matrix_expands_in_written_order() -> None:
    pipeline = parse(
        """
        jobs:
          test:
            matrix: {OS: [linux, mac], PY: [3.11, "3.12"]}
            env: {PY: overridden, KEEP: "1"}
            run: pytest
          report:
            needs: [test]
            run: x
        """
    )
    names = [job.name for job in pipeline.jobs]
    assert names == [
        "test [OS=linux, PY=3.11]",
        "test [OS=linux, PY=3.12]",
        "test [OS=mac, PY=3.11]",
        "test [OS=mac, PY=3.12]",
        "report",
    ]
    first = pipeline.jobs[0]
    assert first.base_name == "test"
    assert dict(first.matrix) == {"OS": "linux", "PY": "3.11"}
    assert dict(first.env) == {"PY": "3.11", "KEEP": "1", "OS": "linux"}
    assert pipeline.job("report").needs == tuple(Need(name) for name in names[:4])


def test_parse_native_need_on_one_matrix_expansion() -> None:
    pipeline = parse(
        """
        jobs:
          test: {matrix: {PY: ["3.11", "3.12"]}, run: x}
          one: {needs: ["test [PY=3.12]"], run: x}
        """
    )
    assert pipeline.job("one").needs == (Need("test [PY=3.12]"),)


def test_parse_native_needs_forms() -> None:
    pipeline = parse(
        """
        jobs:
          a: {run: x, needs: []}
          b: {run: x, needs: a}
          c: {run: x, needs: [a, {job: b, optional: true}]}
        """
    )
    assert pipeline.job("a").needs == ()
    assert pipeline.job("b").needs == (Need("a"),)
    assert pipeline.job("c").needs == (Need("a"), Need("b", optional=True))


def test_parse_native_when_becomes_one_rule() -> None:
    (job,) = parse(
        """
        jobs:
          deploy:
            run: x
            when:
              on: [tag]
              ref: "v*"
              changes: [src/**]
              exists: [Dockerfile]
              if: $DEPLOY == "1"
              status: failure
        """
    ).jobs
    assert job.rules == (
        Rule(
            if_expr='$DEPLOY == "1"',
            events=frozenset({EventKind.TAG}),
            refs=("v*",),
            changes=("src/**",),
            exists=("Dockerfile",),
            when=When.ON_FAILURE,
            mark=Mark(".conveyor.yml", 6, 7),
        ),
    )


@pytest.mark.parametrize(
    ("status", "when"),
    [("success", When.ON_SUCCESS), ("failure", When.ON_FAILURE), ("always", When.ALWAYS)],
)
def test_parse_native_status_maps_to_when(status: str, when: When) -> None:
    (job,) = parse(f"jobs: {{a: {{run: x, when: {{status: {status}}}}}}}").jobs
    assert job.rules is not None
    assert job.rules[0].when is when


def test_parse_native_manual_job() -> None:
    pipeline = parse("jobs: {a: {run: x, manual: true}, b: {run: x, manual: true, when: {}}}")
    a, b = pipeline.jobs
    assert a.when is When.MANUAL
    assert a.rules is None
    assert b.rules is not None
    assert b.rules[0].when is When.MANUAL


def test_parse_native_artifacts_list_and_mapping() -> None:
    pipeline = parse(
        """
        jobs:
          a: {run: x, artifacts: [dist/**]}
          b: {run: x, artifacts: {paths: [out/], exclude: ["*.tmp"], when: always}}
        """
    )
    assert pipeline.job("a").artifacts == Artifacts(paths=("dist/**",))
    assert pipeline.job("b").artifacts == Artifacts(("out/",), ("*.tmp",), ArtifactWhen.ALWAYS)


def test_parse_native_stages_order_and_job_stage() -> None:
    pipeline = parse(
        """
        stages: [build, test]
        jobs:
          t: {stage: test, run: x}
          b: {run: x}
        """
    )
    assert pipeline.stages == ("build", "test")
    assert pipeline.job("b").stage == "build"


def test_parse_native_stages_from_first_appearance() -> None:
    pipeline = parse("jobs: {a: {stage: two, run: x}, b: {stage: one, run: x}, c: {run: x}}")
    assert pipeline.stages == ("two", "one", DEFAULT_STAGE)


def test_parse_native_job_fields() -> None:
    (job,) = parse("jobs: {a: {run: x, secrets: [API_KEY], workdir: sub, env: {A: b}}}").jobs
    assert (job.secrets, job.workdir, dict(job.env)) == (("API_KEY",), "sub", {"A": "b"})
