"""`conveyor validate` and `run` with a GitLab instance configured (CONVEYOR_GITLAB_URL, a
fake GitLab API on 127.0.0.1): `include: project` and `template` are fetched, their jobs
run; once the instance is gone, the on-disk cache serves them (offline mode too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.gitlab_files import FakeGitLabApi

PIPELINE = """\
include:
  - project: group/ci
    ref: v2
    file: /jobs.yml
  - template: Jobs/Hello.gitlab-ci.yml
mine:
  extends: .hello
"""
FILES = {("group/ci", "jobs.yml", "v2"): b"shared:\n  script: echo shared-from-project\n"}
TEMPLATES = {"Jobs/Hello.gitlab-ci.yml": b".hello:\n  script: echo hello-from-template\n"}


def conveyor(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(project),
            "CONVEYOR_HOME": str(project / ".home"),
            "CONVEYOR_INCLUDE_CACHE": str(project.parent / "cache"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_instance_includes_are_fetched_run_and_then_served_from_the_cache(tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    api = FakeGitLabApi(dict(FILES), dict(TEMPLATES), token="glpat-token-42")
    env = {"CONVEYOR_GITLAB_URL": api.url, "CONVEYOR_GITLAB_TOKEN": "glpat-token-42"}
    try:
        ran = conveyor(project, env, "run", "--json")
    finally:
        api.close()
    assert ran.returncode == 0, ran.stderr
    record = json.loads(ran.stdout)
    assert sorted((job["name"], job["status"]) for job in record["jobs"]) == [
        ("mine", "success"),
        ("shared", "success"),
    ]
    assert "glpat-token-42" not in ran.stdout + ran.stderr
    gone = conveyor(project, env, "validate")
    offline = conveyor(project, {**env, "CONVEYOR_OFFLINE": "1"}, "validate", "--strict")
    assert (gone.returncode, offline.returncode) == (0, 0), gone.stderr + offline.stderr
    assert "2 jobs" in gone.stdout
    assert "warning" not in gone.stderr + offline.stderr
