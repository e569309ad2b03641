"""Top-level structure: stages, variables, default, hidden jobs, keywords, warnings."""

from __future__ import annotations

from conveyor.model import When

from .helpers import errors_of, parse


def test_parse_default_stages_wrap_pre_and_post() -> None:
    pipeline = parse("job:\n  script: echo\n")
    assert pipeline.stages == (".pre", "build", "test", "deploy", ".post")
    assert pipeline.flavor == "gitlab"
    assert pipeline.isolate_jobs is True


def test_parse_written_stages_keep_order_and_gain_pre_post() -> None:
    pipeline = parse("stages: [lint, ship]\njob:\n  stage: ship\n  script: echo\n")
    assert pipeline.stages == (".pre", "lint", "ship", ".post")


def test_parse_job_defaults_to_stage_test() -> None:
    assert parse("job:\n  script: echo\n").job("job").stage == "test"


def test_parse_before_script_and_script_are_one_step() -> None:
    job = parse(
        """
        default:
          before_script: [echo one]
        job:
          script: [echo two, echo three]
          after_script: echo after
        """
    ).job("job")
    assert [(s.name, s.run) for s in job.steps] == [("script", "echo one\necho two\necho three")]
    assert [(s.name, s.run, s.timeout_s) for s in job.after_steps] == [
        ("after_script", "echo after", 300.0)
    ]


def test_parse_job_before_script_overrides_default() -> None:
    job = parse(
        """
        default:
          before_script: [echo default]
        job:
          before_script: [echo mine]
          script: echo run
        """
    ).job("job")
    assert job.steps[0].run == "echo mine\necho run"


def test_parse_inherit_default_false_drops_defaults() -> None:
    job = parse(
        """
        default:
          before_script: [echo default]
        job:
          inherit: {default: false}
          script: echo run
        """
    ).job("job")
    assert job.steps[0].run == "echo run"


def test_parse_global_and_job_variables() -> None:
    pipeline = parse(
        """
        variables:
          A: "1"
          B: {value: two, description: the second}
          C: 3
        job:
          variables: {D: four}
          script: echo
        """
    )
    assert dict(pipeline.env) == {"A": "1", "B": "two", "C": "3"}
    assert dict(pipeline.job("job").env) == {"D": "four"}


def test_parse_hidden_jobs_are_not_jobs() -> None:
    pipeline = parse(".hidden:\n  script: echo\njob:\n  script: echo\n")
    assert [job.name for job in pipeline.jobs] == ["job"]


def test_parse_unknown_job_keyword_suggests_the_close_one() -> None:
    assert errors_of("job:\n  scirpt: echo\n  script: echo\n") == [
        '.gitlab-ci.yml:2:3: job "job": unknown keyword scirpt (did you mean "script"?)'
    ]


def test_parse_misspelt_top_level_keyword_is_an_error() -> None:
    problems = errors_of("stage: [a]\njob:\n  script: echo\n")
    assert problems == ['.gitlab-ci.yml:1:1: unknown keyword stage (did you mean "stages"?)']


def test_parse_reports_every_problem_sorted() -> None:
    problems = errors_of(
        """
        a:
          stage: nope
          script: echo
        b:
          when: sometimes
          script: echo
        """
    )
    assert len(problems) == 2
    assert problems[0].startswith('.gitlab-ci.yml:3:10: job "a": stage "nope"')
    assert problems[1].startswith('.gitlab-ci.yml:6:9: job "b": when must be one of')


def test_parse_job_without_script_is_an_error() -> None:
    assert errors_of("job:\n  stage: test\n") == [
        '.gitlab-ci.yml:2:3: job "job": a job needs a script (or trigger) keyword'
    ]


def test_parse_pipeline_without_visible_job_is_an_error() -> None:
    assert errors_of(".hidden:\n  script: echo\n") == [
        ".gitlab-ci.yml:1:1: the pipeline has no visible job (add a job with a script)"
    ]


def test_parse_unsupported_keywords_are_recorded_and_warned_once() -> None:
    pipeline = parse(
        """
        image: python:3.12
        a:
          image: alpine
          services: [docker]
          script: echo
        b:
          services: [docker]
          script: echo
        """
    )
    assert pipeline.warnings == (
        ".gitlab-ci.yml:2:1: warning: image is not supported by a local run: accepted and "
        "recorded, not acted upon",
        ".gitlab-ci.yml:5:3: warning: services is not supported by a local run: accepted and "
        "recorded, not acted upon",
    )
    assert pipeline.job("a").unsupported == {"image": "alpine", "services": ["docker"]}
    assert pipeline.job("b").unsupported == {"image": "python:3.12", "services": ["docker"]}


def test_parse_trigger_job_is_accepted_without_script() -> None:
    job = parse("bridge:\n  trigger: group/other\n").job("bridge")
    assert job.steps == ()
    assert job.unsupported == {"trigger": "group/other"}


def test_parse_yaml_anchors_and_merge_keys() -> None:
    pipeline = parse(
        """
        .common: &common
          stage: build
          variables: {X: "1"}
        job:
          <<: *common
          script: echo
        """
    )
    assert (pipeline.job("job").stage, dict(pipeline.job("job").env)) == ("build", {"X": "1"})


def test_parse_job_level_manual_is_allowed_to_fail() -> None:
    job = parse("job:\n  when: manual\n  script: echo\n").job("job")
    assert (job.when, job.allow_failure) == (When.MANUAL, True)


def test_parse_workflow_name_names_the_pipeline() -> None:
    assert parse("workflow: {name: nightly}\njob:\n  script: echo\n").name == "nightly"


def test_parse_list_variable_is_an_error_naming_the_key() -> None:
    problems = errors_of("variables:\n  DEBUG: [a]\njob:\n  script: echo\n")
    assert problems == [
        ".gitlab-ci.yml:2:10: variables: variable DEBUG must be a string, a number or a "
        "boolean, got list (write its value as one string)"
    ]


def test_parse_pipeline_is_named_after_its_file_like_native() -> None:
    assert parse("job:\n  script: echo\n").name == ".gitlab-ci.yml"
