"""extends (GitLab deep merge), !reference and include: local."""

from __future__ import annotations

from conveyor.config.gitlab.extends import deep_merge
from conveyor.config.gitlab.includes import match_include

from .helpers import errors_of, parse


def test_deep_merge_merges_mappings_and_replaces_lists() -> None:
    base = {"variables": {"A": "1", "B": "1"}, "script": ["one"], "stage": "build"}
    override = {"variables": {"B": "2"}, "script": ["two"]}
    assert deep_merge(base, override) == {
        "variables": {"A": "1", "B": "2"},
        "script": ["two"],
        "stage": "build",
    }


def test_extends_several_levels() -> None:
    job = parse(
        """
        .a:
          stage: build
          variables: {A: a}
        .b:
          extends: .a
          variables: {B: b}
        job:
          extends: .b
          script: echo
        """
    ).job("job")
    assert (job.stage, dict(job.env)) == ("build", {"A": "a", "B": "b"})


def test_extends_several_parents_later_wins() -> None:
    job = parse(
        """
        .one:
          script: echo one
          variables: {X: one, Y: one}
        .two:
          script: echo two
          variables: {X: two}
        job:
          extends: [.one, .two]
        """
    ).job("job")
    assert (job.steps[0].run, dict(job.env)) == ("echo two", {"X": "two", "Y": "one"})


def test_extends_cycle_is_reported_with_the_chain() -> None:
    problems = errors_of(
        """
        .a:
          extends: .b
        .b:
          extends: .a
        job:
          extends: .a
          script: echo
        """
    )
    assert problems == [
        ".gitlab-ci.yml:5:12: extends cycle: .a -> .b -> .a (remove one of these extends)"
    ]


def test_extends_unknown_parent_suggests_a_name() -> None:
    assert errors_of(".tmpl:\n  stage: build\njob:\n  extends: .tmp\n  script: echo\n") == [
        '.gitlab-ci.yml:4:12: job "job" extends ".tmp", which does not exist '
        '(did you mean ".tmpl"?)'
    ]


def test_extends_error_points_at_the_template_value() -> None:
    problems = errors_of(".t:\n  retry: 9\njob:\n  extends: .t\n  script: echo\n")
    assert problems == [
        '.gitlab-ci.yml:2:10: job "job": retry must be 0, 1 or 2 (GitLab\'s limit), got 9'
    ]


def test_reference_reuses_another_jobs_script() -> None:
    job = parse(
        """
        .setup:
          script: [echo setup]
        job:
          script:
            - !reference [.setup, script]
            - echo main
        """
    ).job("job")
    assert job.steps[0].run == "echo setup\necho main"


def test_reference_to_a_missing_key_is_reported() -> None:
    problems = errors_of(".s:\n  script: [x]\njob:\n  script: !reference [.s, scrip]\n")
    assert problems[0] == (
        ".gitlab-ci.yml:4:11: !reference [.s, scrip]: .s > scrip does not exist "
        '(did you mean "script"?)'
    )


def test_include_local_file_merges_with_main_winning() -> None:
    pipeline = parse(
        """
        include: ci/common.yml
        variables: {A: main}
        job:
          script: echo
        """,
        {"ci/common.yml": "variables: {A: included, B: included}\nbuild:\n  script: echo b\n"},
    )
    assert dict(pipeline.env) == {"A": "main", "B": "included"}
    assert [job.name for job in pipeline.jobs] == ["build", "job"]


def test_include_list_glob_and_mapping_forms() -> None:
    pipeline = parse(
        """
        include:
          - local: /ci/one.yml
          - 'ci/more/*.yml'
        main:
          script: echo
        """,
        {
            "ci/one.yml": "one:\n  script: echo\n",
            "ci/more/two.yml": "two:\n  script: echo\n",
            "ci/more/deep/three.yml": "three:\n  script: echo\n",
        },
    )
    assert [job.name for job in pipeline.jobs] == ["one", "two", "main"]


def test_include_error_names_the_included_file() -> None:
    problems = errors_of(
        "include: ci/bad.yml\njob:\n  script: echo\n",
        {"ci/bad.yml": "bad:\n  stage: nope\n  script: x\n"},
    )
    assert problems[0].startswith('ci/bad.yml:2:10: job "bad": stage "nope"')


def test_include_cycle_is_reported_with_the_chain() -> None:
    problems = errors_of(
        "include: ci/a.yml\njob:\n  script: echo\n",
        {"ci/a.yml": "include: ci/b.yml\n", "ci/b.yml": "include: ci/a.yml\n"},
    )
    assert problems == [
        "ci/b.yml:1:10: include cycle: .gitlab-ci.yml -> ci/a.yml -> ci/b.yml -> ci/a.yml "
        "(remove one of these includes)"
    ]


def test_include_missing_file_is_an_error() -> None:
    assert errors_of("include: nope.yml\njob:\n  script: echo\n") == [
        '.gitlab-ci.yml:1:10: include "nope.yml" matches no file (check the path)'
    ]


def test_include_remote_without_a_fetcher_is_a_warning() -> None:
    pipeline = parse("include:\n  - remote: https://example.invalid/x.yml\njob:\n  script: echo\n")
    assert pipeline.warnings == (
        ".gitlab-ci.yml:2:13: warning: include:remote https://example.invalid/x.yml cannot be "
        "read here (remote files are not fetched); jobs that depend on it are left out",
    )


def test_include_template_is_a_warning() -> None:
    pipeline = parse("include:\n  - template: Jobs/Build.yml\njob:\n  script: echo\n")
    assert pipeline.warnings == (
        ".gitlab-ci.yml:2:15: warning: include:template Jobs/Build.yml cannot be read here "
        "(no GitLab instance is configured: set CONVEYOR_GITLAB_URL); jobs that depend on it "
        "are left out",
    )


def test_match_include_star_stays_in_one_directory() -> None:
    paths = ["a.yml", "ci/b.yml", "ci/sub/c.yml"]
    assert match_include("ci/*.yml", paths) == ["ci/b.yml"]
    assert match_include("ci/**.yml", paths) == ["ci/b.yml", "ci/sub/c.yml"]
    assert match_include("/a.yml", paths) == ["a.yml"]
