"""`conveyor validate` and `conveyor plan` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor.config import find_pipeline_file, is_gitlab_file, load_pipeline
from conveyor.config.problems import render_warning
from conveyor.errors import ConfigError, UsageError

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
}

PIPELINE = """\
on: [push, tag]
stages: [build, test, release]
jobs:
  build:
    stage: build
    run: make
  test:
    stage: test
    matrix: {PY: ["3.11", "3.12"]}
    needs: [build]
    run: pytest
  docs:
    stage: test
    when: {changes: ["docs/**"]}
    run: mkdocs build
  release:
    stage: release
    when: {on: [tag], ref: ["v*"]}
    manual: true
    run: ./release.sh
"""


def conveyor(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from conveyor.cli import main; sys.argv[0] = 'conveyor'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
        timeout=60, check=False, env=GIT_ENV,
    )  # fmt: skip


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, check=True,
                   capture_output=True, timeout=30)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".conveyor.yml").write_text(PIPELINE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_validate_ok_prints_one_line(project: Path) -> None:
    done = conveyor(project, "validate")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == ".conveyor.yml: OK (native): 5 jobs, 3 stages\n"


def test_validate_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text(
        textwrap.dedent(
            """\
            jobs:
              build:
                shell: yes
                run: make
                timout: 5
              test:
                needs: [biuld]
                run: pytest
            """
        )
    )
    done = conveyor(tmp_path, "validate", "-f", "bad.yml")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "bad.yml:3:12: jobs.build.shell: expected a string, got boolean "
        "(YAML reads yes as a boolean: quote it)",
        'bad.yml:5:5: jobs.build: unknown key "timout" (did you mean "timeout"?)',
        'bad.yml:7:13: jobs.test.needs: job "test" needs unknown job "biuld" '
        '(did you mean "build"?)',
    ]


def test_validate_yaml_syntax_error(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text("jobs:\n  a: [\n")
    done = conveyor(tmp_path, "validate")
    assert done.returncode == 2
    assert done.stderr.startswith(".conveyor.yml:3:1: YAML syntax error")


def test_validate_without_pipeline_file_is_usage_error(tmp_path: Path) -> None:
    done = conveyor(tmp_path, "validate")
    assert done.returncode == 2
    assert "no pipeline file found" in done.stderr


def test_validate_missing_file_is_usage_error(tmp_path: Path) -> None:
    done = conveyor(tmp_path, "validate", "-f", "nope.yml")
    assert (done.returncode, done.stderr) == (
        2,
        "nope.yml: file not found (check the -f argument)\n",
    )


def test_validate_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_bytes(b"jobs: \xff\n")
    done = conveyor(tmp_path, "validate")
    assert done.returncode == 2
    assert done.stderr.startswith(".conveyor.yml: not UTF-8 text")


def test_validate_of_50_jobs_imports_no_heavy_modules(tmp_path: Path) -> None:
    jobs = "".join(f"  j{i}:\n    needs: [j{i - 1}]\n    run: echo {i}\n" for i in range(1, 50))
    (tmp_path / ".conveyor.yml").write_text("jobs:\n  j0: {run: echo 0}\n" + jobs)
    code = (
        "import sys; from conveyor.cli import main; main(['validate']); "
        "print(sorted(m for m in ('asyncio', 'sqlalchemy', 'fastapi', 'rich', 'httpx') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [".conveyor.yml: OK (native): 50 jobs, 1 stage", "[]"]


def test_plan_push_lists_jobs_in_order_and_reasons(project: Path) -> None:
    done = conveyor(project, "plan", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["event"]["kind"] == "push"
    assert data["event"]["ref"] == "main"
    assert [job["name"] for job in data["jobs"]] == ["build", "test [PY=3.11]", "test [PY=3.12]"]
    assert data["jobs"][1] == {
        "name": "test [PY=3.11]",
        "stage": "test",
        "needs": ["build"],
        "depends_on": ["build"],
        "artifacts_from": ["build"],
        "when": "on_success",
        "allow_failure": False,
        "start_in_s": None,
        "tags": [],
    }
    assert data["excluded"] == [
        {"name": "docs", "reason": 'no changed file matches ["docs/**"]'},
        {"name": "release", "reason": "event push not in on: [tag]"},
    ]


def test_plan_tag_text_output(project: Path) -> None:
    done = conveyor(project, "plan", "--event", "tag", "--ref", "v1.0", "--sha", "b" * 40)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ".conveyor.yml (.conveyor.yml) for tag v1.0@bbbbbbbb: 5 jobs, 0 excluded"
    assert lines[-1].startswith("  5. release")
    assert lines[-1].endswith("after: build, test [PY=3.11], test [PY=3.12], docs  [manual]")


def test_plan_workflow_exclusion_is_one_line(project: Path) -> None:
    done = conveyor(project, "plan", "--event", "schedule", "--ref", "main")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        ".conveyor.yml (.conveyor.yml) for schedule main@"
        + done.stdout.split("@")[1][:8]
        + ": no jobs: event schedule not in the pipeline's on: [push, tag]"
    ]


def test_plan_bad_var_is_usage_error(project: Path) -> None:
    done = conveyor(project, "plan", "--var", "NOEQUALS")
    assert done.returncode == 2
    assert "expected KEY=VALUE" in done.stderr


def test_plan_var_reaches_if_expressions(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text(
        "jobs:\n  a: {run: x, when: {if: '$DEPLOY == \"1\"'}}\n  b: {run: x}\n"
    )
    without = json.loads(conveyor(tmp_path, "plan", "--json").stdout)
    with_var = json.loads(conveyor(tmp_path, "plan", "--json", "--var", "DEPLOY=1").stdout)
    assert [job["name"] for job in without["jobs"]] == ["b"]
    assert [job["name"] for job in with_var["jobs"]] == ["a", "b"]


def test_plan_hard_need_on_excluded_job_exits_2(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text(
        "jobs:\n  a: {run: x, when: {ref: release}}\n  b: {run: x, needs: [a]}\n"
    )
    done = conveyor(tmp_path, "plan", "--ref", "main")
    assert done.returncode == 2
    assert 'job "b" needs "a", which is not in this pipeline' in done.stderr


def test_find_pipeline_file_prefers_native(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("x: 1\n")
    assert find_pipeline_file(tmp_path) == tmp_path / ".gitlab-ci.yml"
    (tmp_path / ".conveyor.yml").write_text("jobs: {a: {run: x}}\n")
    assert find_pipeline_file(tmp_path) == tmp_path / ".conveyor.yml"


def test_find_pipeline_file_none(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no pipeline file found"):
        find_pipeline_file(tmp_path)


def test_find_pipeline_file_configured_name_only(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text("jobs: {a: {run: x}}\n")
    with pytest.raises(UsageError, match=r"no ci/other.yml \(create one"):
        find_pipeline_file(tmp_path, "ci/other.yml")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "other.yml").write_text("jobs: {a: {run: x}}\n")
    assert find_pipeline_file(tmp_path, "ci/other.yml") == tmp_path / "ci" / "other.yml"


def test_load_pipeline_native_reports_problems(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("jobs: {a: {}}\n")
    with pytest.raises(ConfigError, match="has no steps"):
        load_pipeline(path, event=None, fetch=None)


def test_load_pipeline_dispatches_gitlab_files(tmp_path: Path) -> None:
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text("build:\n  script: [make]\n")
    pipeline = load_pipeline(path, event=None, fetch=None)
    assert pipeline.flavor == "gitlab"
    assert [job.name for job in pipeline.jobs] == ["build"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [(".gitlab-ci.yml", True), ("ci/deploy.gitlab-ci.yml", True), (".conveyor.yml", False),
     ("gitlab.yml", False)],
)  # fmt: skip
def test_is_gitlab_file(name: str, expected: bool) -> None:
    assert is_gitlab_file(Path(name)) is expected


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ("f.yml:3:5: key ignored", "f.yml:3:5: warning: key ignored"),
        ("f.yml:3:5: warning: key ignored", "f.yml:3:5: warning: key ignored"),
        ("f.yml: whole file", "f.yml: warning: whole file"),
    ],
)
def test_render_warning(rendered: str, expected: str) -> None:
    assert render_warning(rendered) == expected


def test_validate_names_the_tags_the_jobs_need(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text(
        "jobs:\n  a: {run: make, tags: [linux, docker]}\n  b: {run: x, tags: [linux]}\n"
    )
    done = conveyor(tmp_path, "validate")
    assert (done.returncode, done.stdout) == (
        0,
        ".conveyor.yml: OK (native): 2 jobs, 1 stage, tags docker linux\n",
    )


def test_plan_shows_each_jobs_tags(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text(
        "jobs:\n  build: {run: make, tags: [linux, docker]}\n  lint: {run: ruff}\n"
    )
    text = conveyor(tmp_path, "plan", "--sha", "c" * 40)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[1].endswith("after: -  [tags linux docker]")
    assert text.stdout.splitlines()[2].endswith("after: -")
    data = json.loads(conveyor(tmp_path, "plan", "--json", "--sha", "c" * 40).stdout)
    assert [job["tags"] for job in data["jobs"]] == [["linux", "docker"], []]
