"""`conveyor plan`/`validate` on a real git repository: `include:rules` are decided for the
event (plan) or for a push to the default branch (validate, as GitLab's CI Lint does), and
`include:rules:changes:compare_to` asks git."""

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

FILES = {
    ".gitlab-ci.yml": """\
include:
  - local: ci/deploy.yml
    rules:
      - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  - local: ci/feature.yml
    rules:
      - if: $CI_COMMIT_BRANCH =~ /^feature/
  - local: ci/docs.yml
    rules:
      - changes:
          paths: [docs/**/*]
          compare_to: main
test:
  script: echo test
""",
    "ci/deploy.yml": "deploy:\n  stage: deploy\n  script: echo deploy\n",
    "ci/feature.yml": "review:\n  script: echo review\n",
    "ci/docs.yml": "pages:\n  script: echo pages\n",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, timeout=30,
        check=True,
    )  # fmt: skip


def conveyor(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=repo,
        env={**GIT_ENV, "CONVEYOR_HOME": str(repo / ".home")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "pipeline")
    git(tmp_path, "checkout", "-q", "-b", "feature/docs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# docs\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "docs")
    return tmp_path


def planned(repo: Path, *args: str) -> list[str]:
    done = conveyor(repo, "plan", "--json", *args)
    assert done.returncode == 0, done.stderr
    return sorted(job["name"] for job in json.loads(done.stdout)["jobs"])


def test_plan_includes_files_whose_rules_match_the_feature_branch(repo: Path) -> None:
    assert planned(repo) == ["pages", "review", "test"]


def test_plan_includes_files_whose_rules_match_the_default_branch(repo: Path) -> None:
    assert planned(repo, "--ref", "main") == ["deploy", "test"]


def test_validate_decides_include_rules_for_the_default_branch(repo: Path) -> None:
    done = conveyor(repo, "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ".gitlab-ci.yml: OK (gitlab): 3 jobs, 5 stages"
    assert done.stderr == ""
