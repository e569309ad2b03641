"""`conveyor run` as a user runs it: a real child process, a real store, real jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.store.logreader import LogFileReader
from tests.fakes.processes import live_with_marker

PIPELINE = """\
name: cli
env:
  WHO: world
jobs:
  hello:
    run: echo "hello $WHO from $CONVEYOR_JOB"
  after:
    needs: [hello]
    run: echo "token is $TOKEN and var is $EXTRA"
    secrets: [TOKEN]
  deploy:
    needs: [after]
    manual: true
    run: echo deployed
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    env.update(CONVEYOR_HOME=str(home), **extra)
    return env


def _conveyor(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "run", *args],
        cwd=cwd,
        env=_env(cwd / ".home", **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _project(tmp_path: Path, text: str = PIPELINE) -> Path:
    (tmp_path / ".conveyor.yml").write_text(text)
    return tmp_path


def test_cli_run_json_success_and_masking(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _conveyor(project, "--json", "--var", "EXTRA=42", TOKEN="s3cr3t-token-value")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    statuses = {j["name"]: j["status"] for j in record["jobs"]}
    assert (record["status"], statuses) == (
        "success",
        {"hello": "success", "after": "success", "deploy": "manual"},
    )
    workers = {j["name"]: j["worker"] for j in record["jobs"]}
    assert workers == {"hello": "local", "after": "local", "deploy": None}
    assert "[hello] hello world from hello" in done.stderr
    assert "s3cr3t-token-value" not in done.stderr
    run_dir = project / ".home" / "runs" / record["run_id"]
    texts = [r.text for r in LogFileReader(run_dir).read_job("after")]
    assert "token is [MASKED] and var is 42" in texts


def test_cli_run_job_plays_manual_job(tmp_path: Path) -> None:
    done = _conveyor(_project(tmp_path), "--json", "--job", "deploy")
    statuses = {j["name"]: j["status"] for j in json.loads(done.stdout)["jobs"]}
    assert (done.returncode, statuses["deploy"]) == (0, "success")


def test_cli_run_failure_exits_1(tmp_path: Path) -> None:
    done = _conveyor(_project(tmp_path, "jobs:\n  bad:\n    run: exit 3\n"))
    assert (done.returncode, "pipeline failed" in done.stdout) == (1, True)


def test_cli_run_invalid_config_exits_2(tmp_path: Path) -> None:
    done = _conveyor(_project(tmp_path, "jobs:\n  bad:\n    runn: true\n"))
    assert (done.returncode, ".conveyor.yml:3:5" in done.stderr) == (2, True)


def test_cli_run_unknown_job_exits_2(tmp_path: Path) -> None:
    done = _conveyor(_project(tmp_path), "--job", "helo")
    assert (done.returncode, "did you mean 'hello'" in done.stderr) == (2, True)


def test_cli_run_excluded_by_event_exits_0(tmp_path: Path) -> None:
    done = _conveyor(_project(tmp_path, "on: [tag]\njobs:\n  a:\n    run: echo hi\n"))
    assert (done.returncode, "excluded" in done.stdout) == (0, True)


def test_cli_run_two_at_once_both_recorded(tmp_path: Path) -> None:
    project = _project(tmp_path, "jobs:\n  a:\n    run: sleep 0.5; echo done\n")
    args = [sys.executable, "-m", "conveyor", "run", "--json"]
    env = _env(project / ".home")
    procs = [
        subprocess.Popen(args, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    records = [json.loads(out) for out, _ in outputs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len({r["run_id"] for r in records}) == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_run_signal_cancels_and_exits_130(tmp_path: Path, sig: signal.Signals) -> None:
    marker = f"conveyor-sig-{os.getpid()}-{time.time_ns()}"
    code = "import time; time.sleep(1000)"
    text = f'jobs:\n  slow:\n    run: sleep 1000 & python -c "{code}" {marker}\n'
    project = _project(tmp_path, text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", "--json"],
        cwd=project,
        env=_env(project / ".home", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not live_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, live_with_marker(marker)) == (130, []), err
    record = json.loads(out)
    assert (record["status"], record["jobs"][0]["status"]) == ("canceled", "canceled")


def _wait_for_recorded_group(home: Path) -> None:
    """Until the running run's process group is in the store (written right after the
    process starts, so possibly after the process is already visible)."""
    from conveyor.store import open_store

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        store = open_store(home)
        try:
            runs = store.list_runs()
            if runs and store.processes(runs[0].run_id):
                return
        finally:
            store.close()
        time.sleep(0.05)
    raise AssertionError("conveyor never recorded the job's process group")


def test_cli_run_recovers_run_of_killed_conveyor(tmp_path: Path) -> None:
    from conveyor.store import open_store

    marker = f"conveyor-orphan-{os.getpid()}-{time.time_ns()}"
    code = "import time; time.sleep(1000)"
    project = _project(tmp_path, f'jobs:\n  slow:\n    run: python -c "{code}" {marker}\n')
    env = _env(project / ".home", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not live_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    _wait_for_recorded_group(project / ".home")  # a crash before that cannot be recovered
    proc.kill()
    proc.wait(timeout=10)
    assert live_with_marker(marker), "the job's group outlives a SIGKILLed conveyor until recovery"
    (project / ".conveyor.yml").write_text("jobs:\n  quick:\n    run: echo ok\n")
    done = _conveyor(project)
    store = open_store(project / ".home")
    try:
        runs = store.list_runs()
    finally:
        store.close()
    old = runs[-1]
    alive = {pid: Path(f"/proc/{pid}/stat").read_text() for pid in live_with_marker(marker)}
    assert (done.returncode, alive) == (0, {}), done.stderr
    assert (str(old.status), old.reason, "recovered run" in done.stderr) == (
        "failed",
        "interrupted",
        True,
    )
