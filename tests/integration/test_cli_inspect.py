"""`conveyor runs/show/logs/cancel` as a user runs them: the real CLI in a subprocess,
against a store filled through the store API (and, for cancel/follow, a live owner)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.engine.recovery import process_start_ticks
from conveyor.model import EventKind, JobRecord, LogRecord, RunRecord, Status, Stream
from conveyor.records import run_to_dict
from conveyor.store import open_store
from conveyor.store.logfiles import RunLogs
from conveyor.store.paths import new_run_id, run_dir
from conveyor.store.sql import SqlRunStore

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MATRIX_JOB = "test [PY=3.12]"


@dataclass
class Project:
    folder: Path
    home: Path
    store: SqlRunStore

    def conveyor(self, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cli_argv(*args),
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONVEYOR_HOME": str(self.home)}


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from conveyor.cli import main; main()", *args]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    home = tmp_path / "state"
    store = open_store(home)
    yield Project(tmp_path, home, store)
    store.close()


def add_finished_run(project: Project, *, ref: str = "main") -> RunRecord:
    run_id = new_run_id()
    run = project.store.create_run(
        RunRecord(
            run_id,
            "acme/app",
            ref,
            "abcdef1234567890",
            EventKind.PUSH,
            Status.FAILED,
            created_at=T0,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=75),
            pipeline_name="demo",
            reason="job test [PY=3.12] failed",
        )
    )
    project.store.save_job(
        run_id,
        JobRecord(
            "build",
            "build",
            Status.SUCCESS,
            attempt=1,
            exit_code=0,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3),
        ),
    )
    project.store.save_job(
        run_id,
        JobRecord(
            MATRIX_JOB,
            "test",
            Status.FAILED,
            attempt=2,
            exit_code=3,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=4),
            reason="exit code 3",
        ),
    )
    logs = RunLogs(run_dir(project.home, run_id))
    for n, (job, ms) in enumerate([("build", 0), (MATRIX_JOB, 5), ("build", 10)], start=1):
        logs.write_many(
            [
                LogRecord(
                    T0 + timedelta(milliseconds=ms),
                    run_id,
                    job,
                    "s",
                    Stream.STDOUT,
                    n,
                    f"{job} says {n}",
                )
            ]
        )
    logs.close()
    return run


def add_running_run(project: Project, owner_pid: int, owner_ticks: int) -> str:
    run_id = new_run_id()
    project.store.create_run(
        RunRecord(
            run_id,
            "acme/app",
            "main",
            "s",
            EventKind.PUSH,
            Status.RUNNING,
            created_at=T0,
            started_at=T0,
        )
    )
    project.store.claim_run(run_id, owner_pid=owner_pid, owner_started_ticks=owner_ticks)
    project.store.save_job(
        run_id, JobRecord("build", "build", Status.RUNNING, attempt=1, started_at=T0)
    )
    return run_id


def test_runs_in_project_without_runs_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_HOME"}
    done = subprocess.run(
        cli_argv("runs"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "no runs yet (start one with `conveyor run`)",
    )
    assert not (tmp_path / ".conveyor").exists()


def test_runs_json_lists_newest_first(project: Project) -> None:
    first, second = add_finished_run(project), add_finished_run(project, ref="dev")
    done = project.conveyor("runs", "--json")
    listed = json.loads(done.stdout)
    assert [(r["run_id"], r["number"], r["ref"]) for r in listed] == [
        (second.run_id, 2, "dev"),
        (first.run_id, 1, "main"),
    ]


def test_runs_table_shows_a_row_per_run(project: Project) -> None:
    run = add_finished_run(project)
    lines = project.conveyor("runs").stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "#", "STATUS", "REF", "EVENT", "CREATED", "DURATION"]
    assert lines[1].split() == [
        run.run_id,
        "1",
        "failed",
        "main",
        "push",
        "2026-11-23",
        "12:00:00Z",
        "1m15s",
    ]


def test_show_json_is_the_run_record(project: Project) -> None:
    run = add_finished_run(project)
    stored = project.store.get_run(run.run_id)
    assert stored is not None
    assert json.loads(project.conveyor("show", run.run_id, "--json").stdout) == run_to_dict(stored)


def test_show_lists_jobs_with_attempt_exit_code_and_reason(project: Project) -> None:
    run = add_finished_run(project)
    lines = project.conveyor("show", run.run_id).stdout.splitlines()
    assert lines[0] == f"run #1  {run.run_id}  failed (job test [PY=3.12] failed)"
    row = next(line for line in lines if line.startswith(MATRIX_JOB))
    assert row.split()[2:] == ["test", "failed", "2", "3", "4.0s", "exit", "code", "3"]


def test_show_unknown_run_exits_2_naming_it(project: Project) -> None:
    done = project.conveyor("show", "20990101T000000000Z-nosuchid")
    assert done.returncode == 2
    assert "run '20990101T000000000Z-nosuchid': no such run" in done.stderr
    assert "conveyor runs" in done.stderr


def test_logs_of_run_prefix_lines_with_job_in_time_order(project: Project) -> None:
    run = add_finished_run(project)
    assert project.conveyor("logs", run.run_id).stdout.splitlines() == [
        "[build] build says 1",
        f"[{MATRIX_JOB}] {MATRIX_JOB} says 2",
        "[build] build says 3",
    ]


def test_logs_of_job_as_json_records(project: Project) -> None:
    run = add_finished_run(project)
    lines = project.conveyor("logs", run.run_id, "build", "--json").stdout.splitlines()
    assert [(r["job"], r["n"], r["stream"]) for r in map(json.loads, lines)] == [
        ("build", 1, "stdout"),
        ("build", 3, "stdout"),
    ]


def test_logs_unknown_job_suggests_close_name(project: Project) -> None:
    run = add_finished_run(project)
    done = project.conveyor("logs", run.run_id, "tset")
    assert done.returncode == 2
    assert f"run {run.run_id}: no job 'tset' (did you mean \"{MATRIX_JOB}\"?)" in done.stderr


def test_logs_follow_prints_until_the_run_ends(project: Project) -> None:
    my_ticks = process_start_ticks(os.getpid())
    assert my_ticks is not None
    run_id = add_running_run(project, os.getpid(), my_ticks)
    logs = RunLogs(run_dir(project.home, run_id))
    logs.write_many([LogRecord(datetime.now(UTC), run_id, "build", "s", Stream.STDOUT, 1, "early")])
    follower = subprocess.Popen(
        cli_argv("logs", run_id, "--follow"),
        cwd=project.folder,
        env=project.env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    assert follower.stdout.readline() == "[build] early\n"
    logs.write_many([LogRecord(datetime.now(UTC), run_id, "deploy", "s", Stream.STDOUT, 1, "late")])
    logs.close()
    project.store.update_run(run_id, status=Status.SUCCESS, finished_at=datetime.now(UTC))
    rest = follower.stdout.read()
    follower.stdout.close()
    assert (follower.wait(timeout=20), rest) == (0, "[deploy] late\n")


_OWNER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from conveyor.model import Status
from conveyor.store import open_store
store = open_store(Path(sys.argv[1]))
print("ready", flush=True)
deadline = time.monotonic() + 20
while not store.is_cancel_requested(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)
store.update_run(sys.argv[2], status=Status.CANCELED, finished_at=datetime.now(UTC))
"""


def test_cancel_is_seen_by_the_owner_process(project: Project) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(project.home), "placeholder"],
        stdout=subprocess.PIPE,
        text=True,
    )
    owner.kill()
    owner.wait()
    assert owner.stdout is not None
    owner.stdout.close()
    run_id = add_running_run(project, 0, 0)  # claimed for real below, once the owner runs
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(project.home), run_id], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    owner.stdout.readline()
    owner.stdout.close()
    ticks = process_start_ticks(owner.pid)
    assert ticks is not None
    project.store.claim_run(run_id, owner_pid=owner.pid, owner_started_ticks=ticks)
    done = project.conveyor("cancel", run_id)
    owner.wait(timeout=20)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        f"run #1 ({run_id}): cancel requested",
        f"run #1 ({run_id}) ended: canceled",
    ]


def test_cancel_with_dead_owner_recovers_the_run(project: Project) -> None:
    my_ticks = process_start_ticks(os.getpid())
    assert my_ticks is not None
    run_id = add_running_run(project, os.getpid(), my_ticks + 1)  # "reused" pid = owner gone
    done = project.conveyor("cancel", run_id)
    assert done.returncode == 0
    assert f"run {run_id} was interrupted" in done.stderr
    assert done.stdout.strip() == (
        f"run #1 ({run_id}) already ended: failed, interrupted; nothing to cancel"
    )
    assert not project.store.is_cancel_requested(run_id)


def test_cancel_unknown_run_exits_2(project: Project) -> None:
    assert project.conveyor("cancel", "nope").returncode == 2
