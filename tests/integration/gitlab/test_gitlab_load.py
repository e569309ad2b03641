"""load_gitlab on real files, and the CLI (validate, plan, run) on a `.gitlab-ci.yml`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.config import load_pipeline
from conveyor.config.gitlab import load_gitlab
from conveyor.errors import ConfigError


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONVEYOR_HOME": str(cwd / ".home")},
        check=False,
    )


def test_load_gitlab_reads_local_includes_and_globs(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": "include:\n  - local: /ci/base.yml\n  - ci/jobs/*.yml\n",
            "ci/base.yml": "variables: {A: base}\n",
            "ci/jobs/lint.yml": "lint:\n  script: echo lint\n",
            "ci/jobs/unit.yml": "unit:\n  script: echo unit\n",
            ".git/ignored.yml": "ignored:\n  script: echo\n",
        },
    )
    pipeline = load_gitlab(tmp_path / ".gitlab-ci.yml")
    assert [job.name for job in pipeline.jobs] == ["lint", "unit"]
    assert dict(pipeline.env) == {"A": "base"}


def test_load_pipeline_dispatches_gitlab_files(tmp_path: Path) -> None:
    write(tmp_path, {"build.gitlab-ci.yml": "job:\n  script: echo\n"})
    pipeline = load_pipeline(tmp_path / "build.gitlab-ci.yml", event=None, fetch=None)
    assert pipeline.flavor == "gitlab"


def test_load_gitlab_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_gitlab(tmp_path / ".gitlab-ci.yml")


def test_cli_validate_names_the_included_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: ci/bad.yml\njob:\n  script: echo\n",
            "ci/bad.yml": "bad:\n  stage: tset\n  script: echo\n",
        },
    )
    done = cli(tmp_path, "validate", "-f", ".gitlab-ci.yml")
    assert done.returncode == 2
    assert 'ci/bad.yml:2:10: job "bad": stage "tset" is not in stages' in done.stderr
    assert '(did you mean "test"?)' in done.stderr


def test_cli_validate_prints_unsupported_keyword_warnings(tmp_path: Path) -> None:
    write(tmp_path, {".gitlab-ci.yml": "job:\n  image: alpine\n  script: echo\n"})
    done = cli(tmp_path, "validate")
    assert done.returncode == 0
    assert ".gitlab-ci.yml:2:3: warning: image is not supported" in done.stdout + done.stderr


def test_cli_run_prints_warnings_like_validate(tmp_path: Path) -> None:
    write(tmp_path, {".gitlab-ci.yml": "job:\n  image: alpine\n  script: echo\n"})
    done = cli(tmp_path, "run")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        ".gitlab-ci.yml:2:3: warning: image is not supported by a local run: accepted and "
        "recorded, not acted upon"
    ]


def test_cli_plan_excludes_default_only_jobs_from_merge_requests(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": (
                "plain:\n  script: echo\n"
                "mr:\n  script: echo\n  rules:\n"
                '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"\n'
            )
        },
    )
    done = cli(tmp_path, "plan", "--event", "merge_request_event", "--ref", "topic")
    assert done.returncode == 0, done.stderr
    assert "plain: event merge_request_event not in" in done.stdout


def test_cli_run_workflow_excluded_exits_zero_without_jobs(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": (
                'workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH == "main"\n'
                "job:\n  script: touch ran.txt\n"
            )
        },
    )
    done = cli(tmp_path, "run", "--ref", "topic")
    assert done.returncode == 0, done.stderr
    assert "the workflow rules excluded it" in done.stdout + done.stderr
    assert not (tmp_path / "ran.txt").exists()


def test_cli_run_runs_a_gitlab_pipeline(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitlab-ci.yml": (
                "build:\n  stage: build\n  script: mkdir -p out && echo built > out/x\n"
                "  artifacts: {paths: [out/]}\n"
                "test:\n  script: grep -q built out/x\n"
            )
        },
    )
    done = cli(tmp_path, "run", "--ref", "main")
    assert done.returncode == 0, done.stdout + done.stderr
