"""`conveyor retry RUN_ID JOB` as a user runs it: `conveyor run` then `conveyor retry` as
real child processes in a real project folder. The job fails on its first try only (it
leaves a marker file in the project)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli_play import _conveyor, _project, _run, _statuses

FLAKY = """\
jobs:
  build:
    run: echo built
  unit:
    needs: [build]
    run: |
      if [ -e marker ]; then echo "second try"; exit 0; fi
      touch marker; echo "first try"; exit 1
  package:
    needs: [unit]
    run: echo packaged
"""


def test_cli_retry_runs_the_next_attempt_then_the_skipped_jobs(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": FLAKY})
    first = _run(project)
    assert (first["status"], _statuses(first)["package"]) == ("failed", ("skipped", 0))
    retried = _conveyor(project, "retry", first["run_id"], "unit", "--json")
    assert retried.returncode == 0, retried.stderr
    record = json.loads(retried.stdout)
    assert (record["run_id"], record["status"], _statuses(record)) == (
        first["run_id"],
        "success",
        {"build": ("success", 1), "unit": ("success", 2), "package": ("success", 1)},
    )
    assert f"run {first['run_id']}: retrying unit, then package" in retried.stderr


def test_cli_retry_of_a_job_that_did_not_fail_exits_2(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": FLAKY})
    first = _run(project)
    refused = _conveyor(project, "retry", first["run_id"], "build")
    assert refused.returncode == 2
    assert "job 'build' is success; only a failed or canceled job can be retried" in (
        refused.stderr
    )
