"""GitLab CI/CD inputs: a `spec: inputs:` header, defaults, types, options, regex,
`include: inputs:` and `$[[ inputs.x ]]` with `expand_vars` and `truncate`."""

from __future__ import annotations

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.config.gitlab.include_rules import include_conditions
from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind

from .helpers import errors_of, parse

TEMPLATE = """\
spec:
  inputs:
    stage:
      default: test
    names:
      type: array
      default: [a, b]
    retries:
      type: number
      default: 1
    env:
      options: [dev, prod]
      default: dev
    version:
      regex: ^v\\d+$
      default: v1
---
"$[[ inputs.env ]]-job":
  stage: $[[ inputs.stage ]]
  script: echo $[[ inputs.version | truncate(1,3) ]]
  retry: $[[ inputs.retries ]]
  parallel:
    matrix:
      - NAME: $[[ inputs.names ]]
"""


def test_main_file_header_takes_the_defaults_and_keeps_types() -> None:
    pipeline = parse(TEMPLATE)
    assert [job.name for job in pipeline.jobs] == ["dev-job: [a]", "dev-job: [b]"]
    job = pipeline.jobs[0]
    assert (job.stage, job.steps[0].run, job.retry.max) == ("test", "echo 1", 1)


def test_include_inputs_replace_the_defaults() -> None:
    text = "include:\n  - local: t.yml\n    inputs: {env: prod, names: [x], version: v22}\n"
    pipeline = parse(text, {"t.yml": TEMPLATE})
    assert [(job.name, job.steps[0].run) for job in pipeline.jobs] == [("prod-job: [x]", "echo 22")]


def test_include_inputs_are_checked_against_the_spec() -> None:
    text = (
        "include:\n  - local: t.yml\n"
        "    inputs: {env: qa, retries: two, version: x1, stag: build}\n"
    )
    assert [p.split(": ", 1)[1] for p in errors_of(text, {"t.yml": TEMPLATE})] == [
        "input env: 'qa' is not one of its options (dev, prod)",
        "input retries: expected a number, got string",
        "input version: 'x1' does not match its regex ^v\\d+$",
        'input stag is not in the file\'s spec:inputs (did you mean "stage"?)',
    ]


def test_mandatory_input_without_a_value_is_an_error_at_the_include() -> None:
    files = {"t.yml": "spec:\n  inputs:\n    name:\n---\njob:\n  script: echo $[[ inputs.name ]]\n"}
    assert errors_of("include: t.yml\n", files) == [
        ".gitlab-ci.yml:1:10: input name has no default: give it a value "
        "(include: inputs: {name: ...})"
    ]


def test_inputs_given_to_a_file_without_a_header_are_an_error() -> None:
    text = "include:\n  - local: t.yml\n    inputs: {a: 1}\n"
    assert errors_of(text, {"t.yml": "job:\n  script: x\n"}) == [
        ".gitlab-ci.yml:2:12: include: inputs are given, but the file has no spec:inputs header"
    ]


def test_unknown_input_and_function_in_a_block_are_errors() -> None:
    text = (
        "spec:\n  inputs:\n    a:\n      default: x\n---\njob:\n  script:\n"
        "    - echo $[[ inputs.b ]]\n    - echo $[[ inputs.a | upper ]]\n"
    )
    problems = errors_of(text)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "$[[ inputs.b ]]: unknown input b",
        "$[[ inputs.a | upper ]]: unknown function upper (expand_vars, truncate)",
    ]


def test_expand_vars_uses_the_variables_include_sees() -> None:
    files = {
        "t.yml": "spec:\n  inputs:\n    ref:\n---\njob:\n"
        "  script: echo $[[ inputs.ref | expand_vars ]]\n"
    }
    text = "include:\n  - local: t.yml\n    inputs: {ref: $CI_COMMIT_REF_NAME}\n"
    event = Event(kind=EventKind.PUSH, ref="main", sha="a" * 40)
    files_read = files
    pipeline = parse_gitlab(
        text,
        ".gitlab-ci.yml",
        lambda pattern: [(pattern, files_read[pattern])] if pattern in files_read else [],
        conditions=include_conditions(event),
    )
    assert pipeline.jobs[0].steps[0].run == "echo main"


def test_a_file_without_a_header_keeps_its_brackets() -> None:
    job = parse("job:\n  script: echo '$[[ inputs.x ]]'\n").job("job")
    assert job.steps[0].run == "echo '$[[ inputs.x ]]'"


def _problems_of(text: str) -> list[str]:
    return [p.split(": ", 1)[1] for p in errors_of(text)]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("spec: [a]", "spec must be a mapping with inputs"),
        ("spec:\n  inputs: [a]", "spec:inputs must be a mapping of inputs"),
        ("spec:\n  input: {}", "spec: unknown keyword input"),
        (
            "spec:\n  inputs:\n    a: {default: x, typo: 1}",
            'input a: unknown keyword typo (did you mean "type"?)',
        ),
        (
            "spec:\n  inputs:\n    a: {default: x, type: text}",
            "input a: type must be string, number, boolean or array",
        ),
        (
            "spec:\n  inputs:\n    a: {default: x, regex: '('}",
            "input a: regex is not a valid RE2 pattern",
        ),
        (
            "spec:\n  inputs:\n    a: {default: 1, type: boolean}",
            "input a: expected a boolean, got integer",
        ),
    ],
)
def test_spec_problems_are_reported(header: str, problem: str) -> None:
    assert problem in _problems_of(header + "\n---\njob:\n  script: x\n")


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("$[[ matrix.a ]]", "only inputs.NAME can be interpolated here"),
        (
            "$[[ inputs.a | truncate(0,1) | truncate(0,1) | truncate(0,1) | expand_vars ]]",
            "at most 3 functions",
        ),
    ],
)
def test_block_problems_are_reported(block: str, problem: str) -> None:
    text = f"spec:\n  inputs:\n    a:\n      default: x\n---\njob:\n  script: echo {block}\n"
    assert any(problem in p for p in _problems_of(text))


def test_boolean_input_inside_text_is_written_as_gitlab_does() -> None:
    text = (
        "spec:\n  inputs:\n    on:\n      type: boolean\n      default: true\n---\n"
        "job:\n  script: echo $[[ inputs.on ]] $[[ inputs.on | expand_vars ]]\n"
    )
    assert parse(text).job("job").steps[0].run == "echo true true"


def test_a_document_start_without_a_spec_header_is_not_a_header() -> None:
    assert errors_of("a: 1\n---\njob:\n  script: x\n")[0].endswith(
        "expected a single document in the stream, but found another document (fix the YAML)"
    )


@pytest.mark.parametrize("head", ["spec: [unclosed\n", "spec: {}\nother: 1\n", "specs: 1\n"])
def test_a_first_document_that_is_not_only_spec_is_no_header(head: str) -> None:
    assert errors_of(head + "---\njob:\n  script: x\n")


def _with_inputs(given: dict[str, str], text: str = TEMPLATE) -> list[str] | list[tuple[str, str]]:
    """The jobs (name, script) of TEMPLATE given `--input` values, or its problems."""
    try:
        pipeline = parse_gitlab(text, ".gitlab-ci.yml", inputs=given)
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    return [(job.name, job.steps[0].run) for job in pipeline.jobs]


def test_pipeline_inputs_are_typed_as_the_spec_says() -> None:
    given = {"env": "prod", "names": '["x", "y"]', "retries": "2", "version": "v123"}
    assert _with_inputs(given) == [("prod-job: [x]", "echo 123"), ("prod-job: [y]", "echo 123")]
    pipeline = parse_gitlab(TEMPLATE, ".gitlab-ci.yml", inputs={"retries": "2"})
    assert pipeline.jobs[0].retry.max == 2
    flag = "spec:\n  inputs:\n    debug: {type: boolean, default: false}\n---\nj:\n  script: echo\n"
    flag += "  variables:\n    DEBUG: $[[ inputs.debug ]]\n"
    debug = parse_gitlab(flag, ".gitlab-ci.yml", inputs={"debug": "true"}).jobs[0]
    assert debug.env["DEBUG"] == "true"


def test_pipeline_inputs_not_declared_or_not_of_their_type_are_refused_where_declared() -> None:
    given = {"envv": "prod", "retries": "two", "names": "a,b", "version": "x1"}
    assert _with_inputs(given) == [
        '.gitlab-ci.yml:3:5: --input envv: not in the file\'s spec:inputs (did you mean "env"?)',
        '.gitlab-ci.yml:5:5: --input names=a,b: expected an array (a JSON array, e.g. ["a", "b"])',
        ".gitlab-ci.yml:8:5: --input retries=two: expected a number (e.g. 3 or 1.5)",
        ".gitlab-ci.yml:14:5: input version: 'x1' does not match its regex ^v\\d+$",
    ]
    assert _with_inputs({"env": "qa"}) == [
        ".gitlab-ci.yml:11:5: input env: 'qa' is not one of its options (dev, prod)"
    ]


def test_pipeline_inputs_for_a_file_without_a_header_are_refused() -> None:
    assert _with_inputs({"env": "prod"}, "j:\n  script: echo\n") == [
        ".gitlab-ci.yml:1:1: --input env: the file has no spec:inputs header "
        "(declare its inputs in a spec: document, then ---)"
    ]
