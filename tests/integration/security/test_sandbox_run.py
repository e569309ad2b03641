"""`conveyor run --sandbox` (issue 15, item 1) as a real process: a sandboxed job cannot
outlive its time limit, leaves no process behind even when it escapes its process group,
cannot write outside its workspace or see conveyor's home, and `--no-network` leaves it
loopback only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.sandboxing import requires_bwrap

pytestmark = requires_bwrap


def _run(project: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    (project / ".conveyor.yml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "run", "--sandbox", "--json", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found


def _marker() -> str:
    return f"{time.monotonic_ns() % 1_000_000}.25"


def _job(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    run = json.loads(done.stdout)
    return dict(run["jobs"][0])


def _job_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The jobs' output lines (`[job] text` on stderr with --json)."""
    return [line.split("] ", 1)[1] for line in done.stderr.splitlines() if "] " in line]


def test_sandboxed_job_cannot_outlive_its_timeout(tmp_path: Path) -> None:
    marker = _marker()
    text = (
        "jobs:\n  stuck:\n    timeout: 1s\n"
        f"    run: trap '' TERM; sleep {marker} & sleep {marker}\n"
    )
    started = time.monotonic()
    done = _run(tmp_path, text)
    job = _job(done)
    assert (done.returncode, job["status"], job["reason"]) == (
        1,
        "failed",
        "job timed out after 1s",
    )
    assert time.monotonic() - started < 30
    assert _processes_with(marker) == []


def test_sandboxed_job_that_leaves_its_group_is_stopped_with_it(tmp_path: Path) -> None:
    marker = _marker()
    done = _run(tmp_path, f"jobs:\n  escape:\n    run: setsid sleep {marker} & echo left\n")
    assert (done.returncode, _job(done)["status"]) == (0, "success")
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_sandboxed_job_writes_only_its_workspace_and_sees_no_home(tmp_path: Path) -> None:
    # outside the private /tmp, on the read-only root: the job tries to write it
    outside = Path("/var/tmp") / f"conveyor-sandbox-{_marker()}"  # noqa: S108
    text = (
        "jobs:\n  write:\n    run: |\n"
        "      echo kept > here.txt\n"
        f"      (echo lost > {outside}) 2>/dev/null || echo refused\n"
        "      echo tmp > /tmp/t && cat /tmp/t\n"
        '      echo "home=$(ls -A .conveyor | tr "\\n" " ")"\n'
    )
    done = _run(tmp_path, text)
    lines = _job_lines(done)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "here.txt").read_text() == "kept\n"
    assert not outside.exists()
    assert {"refused", "tmp"} <= set(lines)
    # conveyor's home inside the project: empty for the job (its database is not there)
    assert "home=" in lines


def test_no_network_leaves_loopback_only(tmp_path: Path) -> None:
    # The job's own /proc lists its network namespace's interfaces. (No interpreter from
    # the test's venv: it may live under /tmp, which the sandbox replaces with its own.)
    script = 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
    done = _run(tmp_path, f"jobs:\n  net:\n    run: '{script}'\n", "--no-network")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = _job_lines(done)  # "running (attempt 1)", the interfaces, "success in …"
    assert lines[1:-1] == ["lo"]


def test_sandboxed_job_gets_sigterm_and_its_grace_on_timeout(tmp_path: Path) -> None:
    """As unconfined: SIGTERM reaches the job's shell (not just bwrap), its trap runs."""
    script = "trap 'sleep 0.3; echo cleaned; exit 3' TERM; sleep 30 & wait"
    text = f"jobs:\n  trapped:\n    timeout: 1s\n    run: {script}\n"
    done = _run(tmp_path, text)
    assert (done.returncode, _job(done)["status"]) == (1, "failed")
    assert "cleaned" in _job_lines(done)
