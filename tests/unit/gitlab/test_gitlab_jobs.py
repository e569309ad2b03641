"""Per-job keywords: retry, timeout, allow_failure, artifacts, needs, parallel."""

from __future__ import annotations

from conveyor.config.gitlab.durations import parse_duration
from conveyor.model import Artifacts, ArtifactWhen, Need, Retry

from .helpers import errors_of, parse


def test_duration_forms() -> None:
    assert [parse_duration(v) for v in ("1h 30m", "90 minutes", "2 hours and 5 seconds", 30)] == [
        5400.0,
        5400.0,
        7205.0,
        30.0,
    ]
    assert [parse_duration(v) for v in ("soon", "", True, "5 fortnights", -1)] == [None] * 5


def test_timeout_is_seconds() -> None:
    assert parse("job:\n  timeout: 1h 30m\n  script: echo\n").job("job").timeout_s == 5400.0


def test_bad_timeout_is_reported() -> None:
    assert errors_of("job:\n  timeout: later\n  script: echo\n") == [
        '.gitlab-ci.yml:2:12: job "job": timeout must be a duration such as 1h 30m or 90 minutes'
    ]


def test_retry_int_means_retries() -> None:
    assert parse("job:\n  retry: 2\n  script: echo\n").job("job").retry == Retry(max=2)


def test_retry_mapping_maps_failure_types() -> None:
    job = parse(
        """
        job:
          script: echo
          retry:
            max: 1
            when: [script_failure, stuck_or_timeout_failure, runner_system_failure]
            exit_codes: [137, 255]
        """
    ).job("job")
    assert job.retry == Retry(
        max=1,
        when=frozenset({"failure", "timeout", "runner_system_failure"}),
        exit_codes=frozenset({137, 255}),
    )


def test_retry_unknown_when_suggests() -> None:
    problems = errors_of("job:\n  script: echo\n  retry: {max: 1, when: script_failur}\n")
    assert problems == [
        ".gitlab-ci.yml:3:25: job \"job\": unknown retry:when 'script_failur' "
        '(did you mean "script_failure"?)'
    ]


def test_allow_failure_exit_codes() -> None:
    job = parse("job:\n  script: exit 3\n  allow_failure: {exit_codes: [3, 4]}\n").job("job")
    assert (job.allow_failure, job.allow_failure_exit_codes) == (True, frozenset({3, 4}))


def test_artifacts_paths_exclude_when() -> None:
    job = parse(
        "job:\n  script: echo\n  artifacts:\n    paths: [out/]\n    exclude: [out/*.tmp]\n"
        "    when: always\n    expire_in: 1 week\n"
    ).job("job")
    assert job.artifacts == Artifacts(("out/",), ("out/*.tmp",), ArtifactWhen.ALWAYS)


def test_needs_forms() -> None:
    pipeline = parse(
        """
        stages: [build, test]
        a:
          stage: build
          script: echo
        b:
          stage: build
          script: echo
        c:
          script: echo
          needs: [a, {job: b, artifacts: false, optional: true}]
        d:
          script: echo
          needs: []
        e:
          script: echo
        """
    )
    assert pipeline.job("c").needs == (Need("a"), Need("b", optional=True, artifacts=False))
    assert (pipeline.job("d").needs, pipeline.job("e").needs) == ((), None)


def test_needs_unknown_job_suggests() -> None:
    problems = errors_of("build:\n  script: echo\ntest:\n  script: echo\n  needs: [biuld]\n")
    assert problems == [
        '.gitlab-ci.yml:4:3: job "test" needs "biuld", which is not a job (did you mean "build"?)'
    ]


def test_needs_on_a_later_stage_is_an_error() -> None:
    problems = errors_of(
        "a:\n  stage: build\n  script: x\n  needs: [b]\nb:\n  stage: deploy\n  script: x\n"
    )
    assert problems == [
        '.gitlab-ci.yml:2:3: job "a" (stage build) needs "b" of the later stage deploy '
        "(move one of them)"
    ]


def test_parallel_count_names_and_indexes() -> None:
    pipeline = parse(
        "test:\n  parallel: 3\n  script: echo\n"
        "after:\n  stage: deploy\n  script: x\n  needs: [test]\n"
    )
    names = [(j.name, j.node_index, j.node_total, j.base_name) for j in pipeline.jobs[:3]]
    assert names == [
        ("test 1/3", 1, 3, "test"),
        ("test 2/3", 2, 3, "test"),
        ("test 3/3", 3, 3, "test"),
    ]
    assert [n.job for n in pipeline.job("after").needs or ()] == [
        "test 1/3",
        "test 2/3",
        "test 3/3",
    ]


def test_parallel_matrix_names_values_in_key_order() -> None:
    pipeline = parse(
        """
        deploystacks:
          script: echo
          parallel:
            matrix:
              - PROVIDER: aws
                STACK: [monitoring, app1]
              - PROVIDER: gcp
                STACK: data
        """
    )
    assert [(j.name, dict(j.env)) for j in pipeline.jobs] == [
        ("deploystacks: [aws, monitoring]", {"PROVIDER": "aws", "STACK": "monitoring"}),
        ("deploystacks: [aws, app1]", {"PROVIDER": "aws", "STACK": "app1"}),
        ("deploystacks: [gcp, data]", {"PROVIDER": "gcp", "STACK": "data"}),
    ]


def test_needs_parallel_matrix_selects_copies() -> None:
    pipeline = parse(
        """
        build:
          stage: build
          script: echo
          parallel:
            matrix:
              - OS: [linux, mac]
        test:
          script: echo
          needs:
            - job: build
              parallel:
                matrix:
                  - OS: mac
        """
    )
    assert [n.job for n in pipeline.job("test").needs or ()] == ["build: [mac]"]


def test_environment_resource_group_interruptible() -> None:
    job = parse(
        "job:\n  script: x\n  environment: {name: prod, url: https://x.invalid}\n"
        "  resource_group: prod\n  interruptible: true\n"
    ).job("job")
    assert (job.environment, job.resource_group, job.interruptible) == ("prod", "prod", True)


def test_dependencies_expand_parallel_names() -> None:
    pipeline = parse(
        "a:\n  stage: build\n  parallel: 2\n  script: x\nb:\n  script: x\n  dependencies: [a]\n"
    )
    assert pipeline.job("b").dependencies == ("a 1/2", "a 2/2")


def test_job_level_when_never_is_an_error_as_in_gitlab() -> None:
    assert errors_of("job:\n  when: never\n  script: echo\n") == [
        '.gitlab-ci.yml:2:9: job "job": when: never can only be used in rules or '
        "workflow:rules (write rules: [{when: never}])"
    ]


def test_delayed_without_start_in_is_an_error() -> None:
    assert errors_of("job:\n  when: delayed\n  script: echo\n") == [
        '.gitlab-ci.yml:2:3: job "job": when: delayed needs start_in'
    ]


def test_after_script_keeps_its_own_time_limit_and_shell() -> None:
    job = parse("job:\n  script: exit 1\n  after_script: [echo a, echo b]\n").job("job")
    assert [(s.name, s.run, s.timeout_s) for s in job.after_steps] == [
        ("after_script", "echo a\necho b", 300.0)
    ]
