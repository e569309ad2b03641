"""`conveyor validate`, `plan` and `run` of a file whose includes conveyor cannot read
(a template, a project file): exit 0 with warnings, the jobs needing them left out, the
rest run; `--strict` refuses (exit 2). Real child processes in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
}

PIPELINE = """\
include:
  - template: Security/SAST.gitlab-ci.yml
  - project: group/ci-templates
    file: /templates/build.yml
stages: [build, test]
build:
  stage: build
  script: echo built > built.txt
sast:
  variables: {SAST_EXCLUDED_PATHS: vendor}
lint:
  extends: .lint-template
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(root), *args], env=GIT_ENV, check=True, timeout=30)
    return root


def conveyor(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=repo,
        env={**GIT_ENV, "CONVEYOR_HOME": str(repo / ".home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_validate_warns_and_names_each_left_out_job(repo: Path) -> None:
    result = conveyor(repo, "validate")
    left_out = [line for line in result.stderr.splitlines() if "is left out" in line]
    assert (result.returncode, len(left_out)) == (0, 2)
    assert '.gitlab-ci.yml:9:1: warning: job "sast" is left out' in left_out[0]
    assert '.gitlab-ci.yml:11:1: warning: job "lint" is left out: it extends ' in left_out[1]


def test_plan_keeps_the_jobs_that_do_not_need_the_includes(repo: Path) -> None:
    result = conveyor(repo, "plan", "--json")
    assert result.returncode == 0, result.stderr
    assert [job["name"] for job in json.loads(result.stdout)["jobs"]] == ["build"]


def test_run_runs_the_rest_and_exits_0(repo: Path) -> None:
    result = conveyor(repo, "run", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert [(job["name"], job["status"]) for job in record["jobs"]] == [("build", "success")]


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_strict_refuses_an_unread_include(repo: Path, command: str) -> None:
    result = conveyor(repo, command, "--strict")
    assert result.returncode == 2
    assert "include:template Security/SAST.gitlab-ci.yml cannot be read here" in result.stderr
