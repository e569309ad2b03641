"""Includes conveyor cannot read (template, project, component, remote offline): the jobs
that depend on them are left out with a warning naming the include; `strict` refuses."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.config.remote import is_offline
from conveyor.errors import ConfigError, IncludeFetchError, IncludeUnreachable
from tests.fakes.remote_files import FakeRemoteFetcher

from .helpers import errors_of, parse

TEMPLATE = "include:\n  - template: Jobs/Build.gitlab-ci.yml\n"
SOURCE = "include:template Jobs/Build.gitlab-ci.yml (.gitlab-ci.yml:2)"


def _left_out(text: str) -> list[str]:
    return [w for w in parse(text).warnings if "is left out" in w]


def test_job_extending_an_unread_template_is_left_out_and_the_rest_kept() -> None:
    pipeline = parse(TEMPLATE + "own:\n  script: echo\nbuild:\n  extends: .build\n")
    assert [job.name for job in pipeline.jobs] == ["own"]
    assert pipeline.warnings[1:] == (
        f'.gitlab-ci.yml:5:1: warning: job "build" is left out: it extends ".build", which '
        f"{SOURCE} may define",
    )


def test_job_without_script_overriding_an_included_job_is_left_out() -> None:
    assert _left_out(TEMPLATE + "own:\n  script: echo\ntest:\n  variables: {A: b}\n") == [
        '.gitlab-ci.yml:5:1: warning: job "test" is left out: it has no script: it only '
        f"changes a job that {SOURCE} may define"
    ]


def test_reference_into_an_unread_template_leaves_the_job_out() -> None:
    text = TEMPLATE + "own:\n  script: echo\nref:\n  script: [!reference [.x, script]]\n"
    assert _left_out(text) == [
        '.gitlab-ci.yml:5:1: warning: job "ref" is left out: its !reference [.x, script] '
        f"points at .x, which {SOURCE} may define"
    ]


def test_template_extending_an_unread_one_takes_its_jobs_along() -> None:
    text = TEMPLATE + ".mine:\n  extends: .build\njob:\n  extends: .mine\nown:\n  script: x\n"
    assert _left_out(text) == [
        '.gitlab-ci.yml:5:1: warning: job "job" is left out: it extends ".mine", which is left out'
    ]


def test_needs_of_a_left_out_job_cascade() -> None:
    text = TEMPLATE + "a:\n  extends: .build\nb:\n  script: x\n  needs: [a]\nc:\n  script: x\n"
    pipeline = parse(text)
    assert [job.name for job in pipeline.jobs] == ["c"]
    assert pipeline.warnings[-1] == (
        '.gitlab-ci.yml:5:1: warning: job "b" is left out: it needs "a", which is left out'
    )


def test_stage_from_an_unread_include_leaves_the_job_out_only_without_stages() -> None:
    assert _left_out(TEMPLATE + "j:\n  stage: lint\n  script: x\nk:\n  script: x\n") == [
        '.gitlab-ci.yml:3:1: warning: job "j" is left out: its stage "lint" is not in the '
        f"default stages; {SOURCE} may list it"
    ]
    problems = errors_of(TEMPLATE + "stages: [a]\nj:\n  stage: lint\n  script: x\n")
    assert problems == [
        '.gitlab-ci.yml:5:10: job "j": stage "lint" is not in stages (.pre, a, .post)'
    ]


def test_without_unavailable_includes_a_missing_template_is_an_error() -> None:
    assert errors_of("job:\n  extends: .build\n") == [
        '.gitlab-ci.yml:2:12: job "job" extends ".build", which does not exist'
    ]


def test_every_include_kind_is_named() -> None:
    warnings = parse(
        """
        include:
          - project: group/tools
            ref: v1
            file: [ci/a.yml, ci/b.yml]
          - component: $CI_SERVER_FQDN/group/comp/lint@1.0
        own:
          script: x
        """
    ).warnings
    assert [w.split(": warning: ")[1].split(" cannot")[0] for w in warnings] == [
        "include:project group/tools (ci/a.yml, ci/b.yml@v1)",
        "include:component $CI_SERVER_FQDN/group/comp/lint@1.0",
    ]


def test_a_file_of_only_unread_includes_has_no_job_and_one_warning() -> None:
    pipeline = parse(TEMPLATE)
    assert (pipeline.jobs, pipeline.warnings[0]) == (
        (),
        ".gitlab-ci.yml:1:1: warning: no job is left: every job needs an unread include",
    )


def test_unreachable_remote_is_unavailable_but_a_missing_one_is_an_error() -> None:
    url = "https://ci.example.com/t.yml"
    text = f"include: {url}\nown:\n  script: x\nj:\n  extends: .t\n"
    offline = FakeRemoteFetcher({url: IncludeUnreachable("cannot connect (ConnectError)")})
    pipeline = parse_gitlab(text, ".gitlab-ci.yml", fetch=offline)
    assert [job.name for job in pipeline.jobs] == ["own"]
    assert pipeline.warnings[0] == (
        f".gitlab-ci.yml:1:10: warning: include:remote {url} cannot be read here (cannot "
        "connect (ConnectError)); jobs that depend on it are left out"
    )
    gone = FakeRemoteFetcher({url: IncludeFetchError("HTTP 404")})
    with pytest.raises(ConfigError, match="HTTP 404"):
        parse_gitlab(text, ".gitlab-ci.yml", fetch=gone)


def test_strict_makes_the_include_and_its_left_out_jobs_errors() -> None:
    text = textwrap.dedent(TEMPLATE + "own:\n  script: x\nbuild:\n  extends: .build\n")
    with pytest.raises(ConfigError) as caught:
        parse_gitlab(text, ".gitlab-ci.yml", strict=True)
    assert [str(p) for p in caught.value.problems] == [
        ".gitlab-ci.yml:2:15: include:template Jobs/Build.gitlab-ci.yml cannot be read here "
        "(no GitLab instance is configured: set CONVEYOR_GITLAB_URL); jobs that depend on it "
        "are left out; --strict refuses that (drop it to plan the rest)",
        f'.gitlab-ci.yml:5:1: job "build" is left out: it extends ".build", which {SOURCE} '
        "may define (--strict)",
    ]


@pytest.mark.parametrize(
    ("value", "offline"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)]
)
def test_offline_mode_is_read_from_conveyor_offline(value: str, offline: bool) -> None:
    assert is_offline({"CONVEYOR_OFFLINE": value}) is offline


def test_needs_and_dependencies_on_jobs_an_unread_include_defines_leave_jobs_out() -> None:
    text = TEMPLATE + (
        "a:\n  script: x\n  needs: [{job: from-template}]\n"
        "b:\n  script: x\n  dependencies: [from-template]\n"
        "c:\n  script: x\n  needs: [{job: from-template, optional: true}, "
        "{pipeline: other, job: x}]\n"
    )
    pipeline = parse(text)
    assert [job.name for job in pipeline.jobs] == ["c"]
    left_out = [w for w in pipeline.warnings if "is left out: " in w]
    assert [w.split("left out: ")[1].split(",")[0] for w in left_out] == [
        'it needs "from-template"',
        'it needs "from-template"',
    ]
