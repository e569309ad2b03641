"""`conveyor play RUN_ID JOB` as a user runs it: `conveyor run` then `conveyor play` as real
child processes in a real project folder (a git repository for GitLab's pipelines)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conveyor.store import open_store
from conveyor.store.logreader import LogFileReader
from tests.fakes.git_repos import GitRepo
from tests.fakes.processes import live_with_marker

NATIVE = """\
jobs:
  build:
    run: echo built
  deploy:
    needs: [build]
    manual: true
    run: echo "deploying $CONVEYOR_SHA"
  smoke:
    needs: [deploy]
    run: echo smoke
"""

GITLAB = """\
stages: [build, deploy, verify]
build:
  stage: build
  script:
    - echo built > out.txt
  artifacts:
    paths: [out.txt]
deploy:
  stage: deploy
  script:
    - cat out.txt
    - echo "deploying $CI_COMMIT_SHA"
  rules:
    - when: manual
verify:
  stage: verify
  script:
    - echo verified
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
}


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # `python` is this one
    return {**env, **GIT_ENV, "CONVEYOR_HOME": str(project / ".home"), "PATH": path}


def _conveyor(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project, env=_env(project), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _project(tmp_path: Path, files: dict[str, str], *, git: bool = False) -> Path:
    project = tmp_path / "app"
    project.mkdir()
    if git:
        GitRepo.create(project, files)
    else:
        for name, text in files.items():
            (project / name).write_text(text)
    return project


def _run(project: Path, *args: str) -> dict[str, Any]:
    done = _conveyor(project, "run", "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _statuses(record: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {job["name"]: (job["status"], job["attempt"]) for job in record["jobs"]}


def _wait_for(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _run_status(project: Path) -> str | None:
    store = open_store(project / ".home")
    try:
        runs = store.list_runs()
    finally:
        store.close()
    return str(runs[0].status) if runs else None


def test_cli_play_native_manual_job_runs_in_the_same_run(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    first = _run(project)
    played = _conveyor(project, "play", first["run_id"], "deploy", "--json")
    assert played.returncode == 0, played.stderr
    record = json.loads(played.stdout)
    shown = json.loads(_conveyor(project, "show", first["run_id"], "--json").stdout)
    expected = {"build": ("success", 1), "deploy": ("success", 1), "smoke": ("success", 1)}
    assert (_statuses(first)["deploy"], record["run_id"], record["status"]) == (
        ("manual", 0),
        first["run_id"],
        "success",
    )
    assert (_statuses(record), _statuses(shown), shown["status"]) == (
        expected,
        expected,
        "success",
    )
    assert "[deploy] deploying" in played.stderr


def test_cli_play_continues_the_job_log_numbering(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    run_id = _run(project)["run_id"]
    folder = project / ".home" / "runs" / run_id
    before = [r.n for r in LogFileReader(folder).read_job("deploy")]
    assert _conveyor(project, "play", run_id, "deploy").returncode == 0
    numbers = [r.n for r in LogFileReader(folder).read_job("deploy")]
    assert (numbers[: len(before)], numbers) == (before, list(range(1, len(numbers) + 1)))
    assert len(numbers) > len(before) > 0


def test_cli_play_gitlab_blocking_manual_job_runs_the_later_stage(tmp_path: Path) -> None:
    project = _project(tmp_path, {".gitlab-ci.yml": GITLAB}, git=True)
    first = _run(project)
    sha = first["sha"]
    # HEAD moves on and changes the job: the play runs the run's commit, file included.
    GitRepo(project).commit({".gitlab-ci.yml": GITLAB.replace("deploying", "changed later")})
    played = _conveyor(project, "play", first["run_id"], "deploy", "--json")
    assert played.returncode == 0, played.stderr
    record = json.loads(played.stdout)
    assert (_statuses(first)["verify"], _statuses(record)) == (
        ("skipped", 0),
        {"build": ("success", 1), "deploy": ("success", 1), "verify": ("success", 1)},
    )
    reader = LogFileReader(project / ".home" / "runs" / first["run_id"])
    texts = [r.text for r in reader.read_job("deploy")]
    assert ("built" in texts, f"deploying {sha}" in texts) == (True, True), texts
    assert not [text for text in texts if "changed later" in text]
    assert GitRepo(project).git("worktree", "list", "--porcelain").count("worktree ") == 1


def test_cli_play_unknown_run_exits_2(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    _run(project)
    done = _conveyor(project, "play", "20000101T000000000Z-nosuchid", "deploy")
    assert (done.returncode, "no such run" in done.stderr) == (2, True)
    assert "conveyor runs" in done.stderr


def test_cli_play_without_a_store_leaves_no_state(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    done = _conveyor(project, "play", "20000101T000000000Z-nosuchid", "deploy")
    assert (done.returncode, (project / ".home").exists()) == (2, False)


def test_cli_play_unknown_job_says_did_you_mean(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    run_id = _run(project)["run_id"]
    done = _conveyor(project, "play", run_id, "deplyo")
    assert (done.returncode, "did you mean 'deploy'?" in done.stderr) == (2, True), done.stderr


def test_cli_play_job_that_is_not_manual_exits_2(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    run_id = _run(project)["run_id"]
    done = _conveyor(project, "play", run_id, "build")
    assert (done.returncode, "not a manual job waiting" in done.stderr) == (2, True)


def test_cli_play_second_play_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    run_id = _run(project)["run_id"]
    assert _conveyor(project, "play", run_id, "deploy").returncode == 0
    again = _conveyor(project, "play", run_id, "deploy")
    assert (again.returncode, "already played" in again.stderr) == (2, True)


def test_cli_play_native_refused_when_head_moved(tmp_path: Path) -> None:
    project = _project(tmp_path, {".conveyor.yml": NATIVE}, git=True)
    first = _run(project)
    GitRepo(project).commit({"later.txt": "another commit"})
    done = _conveyor(project, "play", first["run_id"], "deploy")
    shown = json.loads(_conveyor(project, "show", first["run_id"], "--json").stdout)
    assert (done.returncode, f"not the run's {first['sha'][:12]}" in done.stderr) == (2, True)
    assert _statuses(shown)["deploy"] == ("manual", 0)


WAIT = "import sys, time, pathlib\nwhile not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.05)\n"


def _waiting_project(tmp_path: Path, release: Path, marker: str) -> Path:
    """A job that waits for `release` (its command line carries `marker`) and a manual job
    that waits for nothing (`manual` as soon as the run starts)."""
    pipeline = (
        "jobs:\n"
        "  slow:\n"
        f"    run: python wait.py {release} {marker}\n"
        "  deploy:\n"
        "    needs: []\n"
        "    manual: true\n"
        "    run: echo deployed\n"
    )
    return _project(tmp_path, {".conveyor.yml": pipeline, "wait.py": WAIT})


def test_cli_play_refused_while_the_run_executes_elsewhere(tmp_path: Path) -> None:
    marker = f"conveyor-play-busy-{os.getpid()}-{time.time_ns()}"
    release = tmp_path / "release"
    project = _waiting_project(tmp_path, release, marker)
    proc = _start(project, "run", "--json")
    try:
        _wait_for(lambda: live_with_marker(marker), "the slow job to start")
        _wait_for(lambda: _run_status(project) == "running", "the run to be running")
        run_id = json.loads(_conveyor(project, "runs", "--json").stdout)[0]["run_id"]
        done = _conveyor(project, "play", run_id, "deploy")
    finally:
        release.touch()
        out, err = proc.communicate(timeout=60)
    assert (done.returncode, f"conveyor process {proc.pid}" in done.stderr) == (2, True), (
        done.stderr
    )
    assert (proc.returncode, _statuses(json.loads(out))["deploy"]) == (0, ("manual", 0)), err


def test_cli_play_canceled_run_is_refused(tmp_path: Path) -> None:
    marker = f"conveyor-play-cancel-{os.getpid()}-{time.time_ns()}"
    project = _waiting_project(tmp_path, tmp_path / "never", marker)
    proc = _start(project, "run", "--json")
    _wait_for(lambda: live_with_marker(marker), "the slow job to start")
    _wait_for(lambda: _run_status(project) == "running", "the run to be running")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    record = json.loads(out)
    done = _conveyor(project, "play", record["run_id"], "deploy")
    assert (proc.returncode, record["status"]) == (130, "canceled"), err
    assert (done.returncode, "the run was canceled" in done.stderr) == (2, True), done.stderr


def test_cli_play_interrupted_exits_130_and_cancels_the_run(tmp_path: Path) -> None:
    marker = f"conveyor-play-sigint-{os.getpid()}-{time.time_ns()}"
    code = "import time; time.sleep(1000)"
    pipeline = NATIVE.replace('echo "deploying $CONVEYOR_SHA"', f'python -c "{code}" {marker}')
    project = _project(tmp_path, {".conveyor.yml": pipeline})
    run_id = _run(project)["run_id"]
    proc = _start(project, "play", run_id, "deploy", "--json")
    _wait_for(lambda: live_with_marker(marker), "the played job to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    record = json.loads(out)
    assert (proc.returncode, live_with_marker(marker)) == (130, []), err
    assert (record["run_id"], record["status"], _statuses(record)["deploy"][0]) == (
        run_id,
        "canceled",
        "canceled",
    )


def test_cli_play_killed_conveyor_is_recovered(tmp_path: Path) -> None:
    marker = f"conveyor-play-kill-{os.getpid()}-{time.time_ns()}"
    code = "import time; time.sleep(1000)"
    pipeline = NATIVE.replace('echo "deploying $CONVEYOR_SHA"', f'python -c "{code}" {marker}')
    project = _project(tmp_path, {".conveyor.yml": pipeline})
    run_id = _run(project)["run_id"]
    proc = _start(project, "play", run_id, "deploy")
    _wait_for(lambda: live_with_marker(marker), "the played job to start")

    def group_recorded() -> bool:
        store = open_store(project / ".home")
        try:
            return bool(store.processes(run_id))
        finally:
            store.close()

    _wait_for(group_recorded, "the job's process group in the store")
    proc.kill()
    proc.communicate(timeout=30)
    shown = _conveyor(project, "show", run_id, "--json")
    record = json.loads(shown.stdout)
    assert (record["status"], record["reason"], live_with_marker(marker)) == (
        "failed",
        "interrupted",
        [],
    )


def test_cli_play_help_names_the_arguments(tmp_path: Path) -> None:
    done = _conveyor(tmp_path, "play", "--help")
    assert (done.returncode, "RUN_ID JOB" in done.stdout) == (0, True)


def test_cli_play_keeps_the_runs_job_selection(tmp_path: Path) -> None:
    pipeline = NATIVE + "  lint:\n    run: echo lint\n"
    project = _project(tmp_path, {".conveyor.yml": pipeline})
    first = _run(project, "--job", "smoke")  # build, deploy (manual: not named) and smoke
    played = _conveyor(project, "play", first["run_id"], "deploy", "--json")
    assert played.returncode == 0, played.stderr
    assert _statuses(json.loads(played.stdout)) == {
        "build": ("success", 1),
        "deploy": ("success", 1),
        "smoke": ("success", 1),
    }


def _lock_waiters(lock: Path) -> int:
    """Processes blocked on `lock` (flock), from /proc/locks (`-> FLOCK … dev:inode …`)."""
    inode = f":{lock.stat().st_ino} "
    return sum(
        1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and inode in line
    )


def test_cli_play_two_plays_at_once_run_the_job_once(tmp_path: Path) -> None:
    """Both plays pass their first checks while the test holds the play lock, then race."""
    import fcntl

    project = _project(tmp_path, {".conveyor.yml": NATIVE})
    run_id = _run(project)["run_id"]
    lock = project / ".home" / "play.lock"
    with lock.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        procs = [_start(project, "play", run_id, "deploy") for _ in range(2)]
        try:
            _wait_for(lambda: _lock_waiters(lock) == 2, "both plays to wait for the lock")
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    outputs = [proc.communicate(timeout=60) for proc in procs]
    log = LogFileReader(project / ".home" / "runs" / run_id).read_job("deploy")
    deployed = [r.text for r in log if r.text.startswith("deploying")]
    assert (sorted(p.returncode for p in procs), len(deployed)) == ([0, 2], 1), outputs
    refusals = ("still running in conveyor process", "already played")  # the loser's timing
    assert any(r in err for _, err in outputs for r in refusals), outputs
