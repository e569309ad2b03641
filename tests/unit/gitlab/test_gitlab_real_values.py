"""Values real `.gitlab-ci.yml` files use that GitLab accepts (issue 12): variable scalars,
RE2 regexes, newer retry reasons, matrix needs, cache shapes, `!reference` cascades,
`exists` with variables, `only: [ref@project]`, CI_COMMIT_REF_SLUG."""

from __future__ import annotations

import pytest

from conveyor.config.expr import ExprError, evaluate, validate_expression
from conveyor.config.gitlab.variables import variable_text
from conveyor.engine.cache import cache_policy
from conveyor.model import Cache, Event, EventKind
from conveyor.plan import plan
from conveyor.variables import ref_slug

from .helpers import errors_of, parse


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3.10, "3.1"),
        (2.0, "2.0"),
        (1e16, "1.0e+16"),
        (1e-5, "1.0e-05"),
        (float("inf"), "Infinity"),
        (7, "7"),
        ("x", "x"),
        ([1], None),
    ],
)
def test_variable_text_converts_scalars_as_gitlab(value: object, text: str | None) -> None:
    assert variable_text(value) == text


def test_parse_null_boolean_and_float_variables_become_text() -> None:
    pipeline = parse(
        "variables:\n  EMPTY: null\n  ON: true\n  VER: 3.10\n"
        "job:\n  script: echo\n  variables: {OFF: false, OPT: {value: true}}\n"
    )
    assert dict(pipeline.env) == {"EMPTY": "", "ON": "true", "VER": "3.1"}
    assert dict(pipeline.job("job").env) == {"OFF": "false", "OPT": "true"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (r"$BRANCH =~ /\Amain\z/", True),
        (r"$BRANCH =~ /\Amai\z/", False),
        (r"$BRANCH =~ /\AMAIN\z/i", True),
        ("$LINES =~ /^b$/m", True),
        ("$LINES =~ /a.b/s", True),
        ("$LINES =~ /a.b/", False),
        ("$BRANCH =~ /m.+?/U", True),
        (r"$BRANCH =~ $ANCHORED", True),
    ],
)
def test_evaluate_regexes_with_re2_semantics(expr: str, expected: bool) -> None:
    variables = {"BRANCH": "main", "LINES": "a\nb", "ANCHORED": r"/\Amain\z/"}
    assert evaluate(expr, variables) is expected


def test_validate_refuses_what_re2_refuses_with_its_reason() -> None:
    with pytest.raises(ExprError, match=r"invalid regex /\(\?<=a\)b/: invalid perl operator"):
        validate_expression("$A =~ /(?<=a)b/")


def test_parse_accepts_every_retry_reason_gitlab_accepts() -> None:
    reasons = "[runner_interrupted, runner_external_dependency_failure, missing_dependency_failure]"
    job = parse(f"job:\n  script: echo\n  retry: {{max: 2, when: {reasons}}}\n").job("job")
    assert job.retry.max == 2


def test_parse_needs_parallel_matrix_with_matrix_expressions_pairs_the_copies() -> None:
    pipeline = parse(
        """
        build:
          stage: build
          script: echo
          parallel: {matrix: [{ARCH: [amd64, arm64]}]}
        deploy:
          stage: deploy
          script: echo
          needs: [{job: build, parallel: {matrix: [{ARCH: "$[[ matrix.ARCH ]]"}]}}]
          parallel: {matrix: [{ARCH: [amd64, arm64]}]}
        """
    )
    needs = {job.name: [n.job for n in job.needs or ()] for job in pipeline.jobs}
    assert needs["deploy: [amd64]"] == ["build: [amd64]"]
    assert needs["deploy: [arm64]"] == ["build: [arm64]"]


def test_parse_needs_parallel_matrix_matching_nothing_says_so_without_self_suggestion() -> None:
    problems = errors_of(
        """
        build:
          stage: build
          script: echo
          parallel: {matrix: [{ARCH: [amd64]}]}
        deploy:
          stage: deploy
          script: echo
          needs: [{job: build, parallel: {matrix: [{ARCH: s390x}]}}]
        """
    )
    assert problems == [
        '.gitlab-ci.yml:7:3: job "deploy" needs "build" with a parallel:matrix that matches '
        "none of its jobs (check the matrix values)"
    ]


def test_parse_unknown_need_never_suggests_the_job_itself() -> None:
    problems = errors_of("lint:\n  script: echo\n  needs: [lin]\n")
    assert problems == ['.gitlab-ci.yml:2:3: job "lint" needs "lin", which is not a job']


def test_parse_unknown_dependency_never_suggests_the_job_itself() -> None:
    problems = errors_of("lint:\n  script: echo\n  dependencies: [lin]\n")
    assert problems == ['.gitlab-ci.yml:2:3: job "lint": dependency "lin" is not a job']


def test_parse_cache_paths_null_nested_alias_lists_and_variable_policy() -> None:
    job = parse(
        """
        .caches:
          go: &go {key: go, paths: null}
          more: &more [{key: node, paths: [node_modules], policy: $CACHE_POLICY}]
        job:
          script: echo
          cache: [*go, *more]
        """
    ).job("job")
    assert [(c.key, c.paths, c.policy) for c in job.caches] == [
        ("go", (), "pull-push"),
        ("node", ("node_modules",), "$CACHE_POLICY"),
    ]


@pytest.mark.parametrize(
    ("env", "policy"), [({"P": "pull"}, "pull"), ({"P": "push"}, "push"), ({}, "pull-push")]
)
def test_cache_policy_expands_its_variable(env: dict[str, str], policy: str) -> None:
    assert cache_policy(Cache(key="k", paths=(), policy="$P"), env) == policy


def test_parse_one_missing_reference_leaves_the_valid_one_in_the_list() -> None:
    problems = errors_of(
        """
        .tmpl:
          script: [echo a]
        job:
          script:
            - !reference [.tmpl, script]
            - !reference [.missing, script]
        """
    )
    assert problems == [
        ".gitlab-ci.yml:7:7: !reference [.missing, script]: .missing does not exist"
    ]


def test_plan_rules_exists_expands_job_and_pipeline_variables() -> None:
    pipeline = parse(
        """
        variables: {DIR: docs}
        found:
          script: echo
          variables: {NAME: index.md}
          rules: [{exists: ["$DIR/$NAME"]}]
        missing:
          script: echo
          rules: [{exists: ["$DIR/absent.md"]}]
        """
    )
    event = Event(kind=EventKind.PUSH, ref="main", sha="a" * 40, files=("docs/index.md",))
    result = plan(pipeline, event)
    assert ([j.name for j in result.jobs], [e.reason for e in result.excluded]) == (
        ["found"],
        ['no file matches ["docs/absent.md"]'],
    )


@pytest.mark.parametrize(
    ("repo", "expected"),
    [("group/project", ["named", "keyword", "regex"]), ("fork/project", [])],
)
def test_plan_only_ref_at_project_holds_only_in_that_project(
    repo: str, expected: list[str]
) -> None:
    pipeline = parse(
        """
        named: {script: echo, only: [main@group/project]}
        keyword: {script: echo, only: [branches@group/project]}
        regex: {script: echo, only: ["/^ma/@group/project"]}
        """
    )
    result = plan(pipeline, Event(kind=EventKind.PUSH, ref="main", sha="a" * 40, repo=repo))
    assert [j.name for j in result.jobs] == expected


@pytest.mark.parametrize(
    ("ref", "slug"),
    [
        ("Feature/Big_Thing", "feature-big-thing"),
        ("a//b", "a--b"),
        ("--x--", "x"),
        ("ÄÖ-main", "main"),
        ("a" * 62 + "/b", "a" * 62),
        ("a" * 100, "a" * 63),
    ],
)
def test_ref_slug_is_gitlabs_slugify(ref: str, slug: str) -> None:
    assert ref_slug(ref) == slug
