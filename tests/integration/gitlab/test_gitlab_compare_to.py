"""`conveyor plan`/`run` on a real git repository: `rules:changes:compare_to` is decided by
the diff since the named ref (from their merge base), and an unknown ref refuses the
pipeline with FILE:LINE:COL, as GitLab does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
docs:
  script: echo docs-ran
  rules:
    - changes:
        paths: [docs/**/*]
        compare_to: $CI_DEFAULT_BRANCH
code:
  script: echo code-ran
  rules:
    - changes:
        paths: [src/**/*]
        compare_to: refs/heads/main
tests:
  script: echo tests-ran
  rules:
    - changes:
        paths: [tests/**/*]
        compare_to: main
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, timeout=30,
        check=True,
    )  # fmt: skip


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def feature_branch(tmp_path: Path, pipeline: str) -> Path:
    """main holds the pipeline; feature changes docs, then src (its last commit); main
    later changes tests, which the merge-base diff must not see."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {".gitlab-ci.yml": pipeline, "README.md": "r"}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"docs/index.md": "d"}, "docs")
    commit(repo, {"src/app.py": "a"}, "code")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"tests/test_app.py": "t"}, "tests on main")
    git(repo, "checkout", "-q", "feature")
    return repo


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**GIT_ENV, "CONVEYOR_HOME": str(cwd.parent / "home")},
        check=False,
    )


def test_cli_plan_decides_compare_to_by_the_diff_since_the_ref(tmp_path: Path) -> None:
    repo = feature_branch(tmp_path, PIPELINE)
    done = cli(repo, "plan", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [job["name"] for job in result["jobs"]] == ["docs", "code"]
    assert result["excluded"] == [
        {"name": "tests", "reason": 'no changed file since main matches ["tests/**/*"]'}
    ]


def test_cli_run_refuses_a_compare_to_ref_that_does_not_exist(tmp_path: Path) -> None:
    repo = feature_branch(tmp_path, PIPELINE.replace("compare_to: main", "compare_to: mian"))
    done = cli(repo, "run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        '.gitlab-ci.yml:16:7: job "tests": rules:changes:compare_to is not a valid ref: "mian"'
        in done.stderr
    )
    assert "tests-ran" not in done.stdout
