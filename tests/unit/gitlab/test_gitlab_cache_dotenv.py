"""GitLab `cache:` and `artifacts:reports:dotenv` translated into the model."""

from __future__ import annotations

from conveyor.model import ArtifactWhen, Cache, cache_key_problem
from tests.unit.gitlab.helpers import errors_of, parse


def test_gitlab_cache_mapping_becomes_one_cache() -> None:
    pipeline = parse(
        """
        job:
          script: make
          cache:
            key: deps-$CI_COMMIT_REF_SLUG
            paths: [vendor/]
            policy: pull
            when: always
            untracked: true
            fallback_keys: [deps-main]
        """
    )
    assert pipeline.job("job").caches == (
        Cache(
            key="deps-$CI_COMMIT_REF_SLUG",
            paths=("vendor/",),
            policy="pull",
            when=ArtifactWhen.ALWAYS,
            untracked=True,
            fallback_keys=("deps-main",),
        ),
    )
    assert not any("cache" in warning for warning in pipeline.warnings)


def test_gitlab_cache_key_files_and_list_of_caches() -> None:
    pipeline = parse(
        """
        job:
          script: make
          cache:
            - key: {files: [Gemfile.lock], prefix: gems}
              paths: [vendor/ruby]
            - paths: [.npm/]
        """
    )
    first, second = pipeline.job("job").caches
    assert (first.key_files, first.key_prefix, first.paths) == (
        ("Gemfile.lock",),
        "gems",
        ("vendor/ruby",),
    )
    assert (second.key, second.policy) == ("default", "pull-push")


def test_gitlab_cache_default_reaches_jobs_and_empty_turns_it_off() -> None:
    pipeline = parse(
        """
        default:
          cache: {key: shared, paths: [.cache/]}
        a:
          script: a
        b:
          script: b
          cache: []
        """
    )
    assert [c.key for c in pipeline.job("a").caches] == ["shared"]
    assert pipeline.job("b").caches == ()


def test_gitlab_cache_key_with_slash_is_refused() -> None:
    problems = errors_of("job:\n  script: x\n  cache: {key: a/b, paths: [x]}\n")
    assert problems == [
        '.gitlab-ci.yml:3:16: job "job": cache:key cannot contain the "/" character (use - or _)'
    ]


def test_gitlab_cache_unknown_keyword_and_bad_policy_are_refused() -> None:
    problems = errors_of("job:\n  script: x\n  cache: {pathz: [x], policy: pul}\n")
    assert len(problems) == 2
    assert 'unknown cache keyword pathz (did you mean "paths"?)' in problems[0]
    assert "cache:policy must be one of pull, push, pull-push, got 'pul'" in problems[1]


def test_gitlab_cache_more_than_four_is_refused() -> None:
    caches = "\n".join(f"    - paths: [p{i}]" for i in range(5))
    problems = errors_of(f"job:\n  script: x\n  cache:\n{caches}\n")
    assert any("cache has 5 entries, GitLab allows 4" in p for p in problems)


def test_gitlab_cache_key_files_needs_one_or_two() -> None:
    problems = errors_of("job:\n  script: x\n  cache: {key: {files: [a, b, c]}, paths: [x]}\n")
    assert any("cache:key:files must list one or two files" in p for p in problems)


def test_key_problem_follows_gitlab_rules() -> None:
    assert [
        cache_key_problem(k) is None for k in ("deps-1", "a/b", "a%2Fb", ".", "..", "%2E", ".x")
    ] == [
        True,
        False,
        False,
        False,
        False,
        False,
        True,
    ]


def test_gitlab_reports_dotenv_is_collected_and_other_reports_warn() -> None:
    pipeline = parse(
        """
        build:
          script: make
          artifacts:
            reports:
              dotenv: [build.env, more.env]
              junit: report.xml
        """
    )
    artifacts = pipeline.job("build").artifacts
    assert artifacts is not None
    assert (artifacts.paths, artifacts.dotenv) == ((), ("build.env", "more.env"))
    assert pipeline.warnings == (
        ".gitlab-ci.yml:7:7: warning: artifacts:reports:junit is not collected by conveyor "
        "(ignored)",
    )


def test_gitlab_reports_dotenv_must_be_paths() -> None:
    problems = errors_of("job:\n  script: x\n  artifacts: {reports: {dotenv: 3}}\n")
    assert any("artifacts:reports:dotenv must be a file path" in p for p in problems)
