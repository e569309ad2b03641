"""`include: project`, `template` and `component` read through a GitLabFiles (the fake):
what they define is there, nested locals come from the same project, a component's inputs
apply; unreachable is unavailable (jobs left out), a missing file an error."""

from __future__ import annotations

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.errors import ConfigError
from conveyor.model import Pipeline
from tests.fakes.gitlab_files import FakeGitLabFiles

FILES = {
    ("gnome/citemplates", "flatpak/flatpak.yml", "HEAD"): (
        b"include: /flatpak/common.yml\n.flatpak:\n  extends: .common\n  script: flatpak build\n"
    ),
    ("gnome/citemplates", "flatpak/common.yml", "HEAD"): b".common:\n  stage: build\n",
    ("gnome/components", "templates/release.yml", "1.0"): (
        b"spec:\n  inputs:\n    job:\n      default: release\n---\n"
        b"$[[ inputs.job ]]:\n  script: echo release\n"
    ),
    ("gnome/components", "templates/lint/template.yml", "HEAD"): b"lint:\n  script: lint\n",
}
TEMPLATES = {"Jobs/Build.gitlab-ci.yml": b".auto-build:\n  script: auto build\n"}


def parse_with(text: str, files: FakeGitLabFiles) -> Pipeline:
    return parse_gitlab(text, ".gitlab-ci.yml", gitlab=files)


@pytest.fixture
def gitlab() -> FakeGitLabFiles:
    return FakeGitLabFiles(dict(FILES), dict(TEMPLATES), host="gitlab.gnome.org")


def test_project_include_defines_templates_and_reads_its_locals_from_that_project(
    gitlab: FakeGitLabFiles,
) -> None:
    text = (
        "include:\n  - project: gnome/citemplates\n    file: flatpak/flatpak.yml\n"
        "app:\n  extends: .flatpak\n"
    )
    job = parse_with(text, gitlab).job("app")
    assert (job.stage, job.steps[0].run) == ("build", "flatpak build")


def test_template_include_defines_what_jobs_extend(gitlab: FakeGitLabFiles) -> None:
    text = "include:\n  - template: Jobs/Build.gitlab-ci.yml\nbuild:\n  extends: .auto-build\n"
    pipeline = parse_with(text, gitlab)
    assert (pipeline.warnings, pipeline.job("build").steps[0].run) == ((), "auto build")


def test_component_of_the_instance_with_inputs_and_its_directory_layout(
    gitlab: FakeGitLabFiles,
) -> None:
    text = (
        "include:\n"
        "  - component: $CI_SERVER_FQDN/gnome/components/release@1.0\n"
        "    inputs: {job: ship}\n"
        "  - component: gitlab.gnome.org/gnome/components/lint@~latest\n"
    )
    assert [job.name for job in parse_with(text, gitlab).jobs] == ["ship", "lint"]


def test_component_of_another_instance_is_unavailable(gitlab: FakeGitLabFiles) -> None:
    text = "include:\n  - component: gitlab.com/x/y/z@1\nown:\n  script: x\n"
    assert parse_with(text, gitlab).warnings == (
        ".gitlab-ci.yml:2:16: warning: include:component gitlab.com/x/y/z@1 cannot be read "
        "here (its host is not the configured instance gitlab.gnome.org); jobs that depend "
        "on it are left out",
    )


def test_unreachable_instance_leaves_the_dependent_jobs_out(gitlab: FakeGitLabFiles) -> None:
    gitlab.reachable = False
    text = "include:\n  - template: Jobs/Build.gitlab-ci.yml\nbuild:\n  extends: .auto-build\n"
    text += "own:\n  script: x\n"
    assert [job.name for job in parse_with(text, gitlab).jobs] == ["own"]


def test_missing_project_file_is_an_error_of_the_include(gitlab: FakeGitLabFiles) -> None:
    text = "include:\n  - project: gnome/citemplates\n    file: nope.yml\nown:\n  script: x\n"
    with pytest.raises(ConfigError) as caught:
        parse_with(text, gitlab)
    assert [str(p) for p in caught.value.problems] == [
        ".gitlab-ci.yml:2:14: include:project gnome/citemplates (nope.yml): HTTP 404"
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe", "include:project g/p (x.yml): not UTF-8 text (invalid start byte)"),
        (b"- a\n", "include:project g/p (x.yml): not a mapping of keywords and jobs, got list"),
        (b"a: [\n", "YAML syntax error"),
    ],
)
def test_unusable_project_files_are_errors(body: bytes, problem: str) -> None:
    files = FakeGitLabFiles({("g/p", "x.yml", "HEAD"): body}, {})
    text = "include:\n  - project: g/p\n    file: x.yml\nown:\n  script: x\n"
    with pytest.raises(ConfigError) as caught:
        parse_with(text, files)
    assert problem in str(caught.value)


def test_an_empty_project_file_defines_nothing() -> None:
    files = FakeGitLabFiles({("g/p", "x.yml", "HEAD"): b""}, {})
    text = "include:\n  - project: g/p\n    file: x.yml\nown:\n  script: x\n"
    assert [job.name for job in parse_with(text, files).jobs] == ["own"]
