"""`conveyor run` of a `.gitlab-ci.yml` in a git repository: the pristine checkout that
start-up begins before the file is parsed is the event's commit, and when no run is created
(invalid file, unknown --job, workflow rules) it leaves no checkout and no state behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.git_repos import GitRepo

PIPELINE = "show:\n  script:\n    - cat note.txt\n    - git rev-parse HEAD\n"


def _conveyor(repo: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    if home is not None:
        env["CONVEYOR_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "run", *args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _worktrees(repo: Path) -> list[str]:
    listing = GitRepo(repo).git("worktree", "list", "--porcelain")
    return [line for line in listing.splitlines() if line.startswith("worktree ")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return GitRepo.create(tmp_path / "app").path


def test_cli_run_gitlab_job_runs_in_a_checkout_of_the_given_sha(repo: Path) -> None:
    first = GitRepo(repo).commit({".gitlab-ci.yml": PIPELINE, "note.txt": "first\n"})
    GitRepo(repo).commit({"note.txt": "second\n"})
    done = _conveyor(repo, "--json", "--sha", first)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    log_dir = repo / ".conveyor" / "runs" / record["run_id"] / "logs"
    texts = [json.loads(line)["text"] for line in (log_dir / "show.jsonl").read_text().splitlines()]
    assert ["first", first] == [t for t in texts if t in ("first", "second", first)]
    assert [f"worktree {repo}"] == _worktrees(repo)


def test_cli_run_gitlab_invalid_file_leaves_no_state(repo: Path) -> None:
    GitRepo(repo).commit({".gitlab-ci.yml": "show:\n  scriptt: echo\n"})
    done = _conveyor(repo)
    assert (done.returncode, ".gitlab-ci.yml:2:3" in done.stderr) == (2, True)
    assert (False, [f"worktree {repo}"]) == ((repo / ".conveyor").exists(), _worktrees(repo))


def test_cli_run_gitlab_workflow_excluded_leaves_no_state(repo: Path, tmp_path: Path) -> None:
    text = "workflow:\n  rules:\n    - when: never\n" + PIPELINE
    GitRepo(repo).commit({".gitlab-ci.yml": text, "note.txt": "n\n"})
    home = tmp_path / "state" / "home"
    done = _conveyor(repo, home=home)
    assert (done.returncode, "workflow rules excluded it" in done.stdout) == (0, True)
    assert (False, [f"worktree {repo}"]) == ((tmp_path / "state").exists(), _worktrees(repo))


def test_cli_run_gitlab_unknown_job_keeps_only_earlier_runs(repo: Path) -> None:
    GitRepo(repo).commit({".gitlab-ci.yml": PIPELINE, "note.txt": "n\n"})
    first = _conveyor(repo, "--json")
    assert first.returncode == 0, first.stderr
    done = _conveyor(repo, "--job", "shw")
    assert (done.returncode, "shw" in done.stderr) == (2, True)
    runs = sorted(p.name for p in (repo / ".conveyor" / "runs").iterdir())
    assert ([json.loads(first.stdout)["run_id"]], [f"worktree {repo}"]) == (runs, _worktrees(repo))
