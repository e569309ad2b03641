"""`conveyor serve` as a real process: SIGTERM during a run, restarts with queued runs or
with a run whose job waits for its retry, startup errors, and no secret in any log line."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from conveyor.model import EventKind, RunRecord, Status
from conveyor.store import open_store
from conveyor.store.paths import new_run_id
from tests.conveyor_process import ConveyorProcess, conveyor_process
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    ENV,
    GH_SECRET,
    GL_TOKEN,
    github_headers,
    github_push_body,
    make_settings,
    serve_app,
    settings_text,
)


def _serve_process(config: Path, home: Path) -> AbstractContextManager[ConveyorProcess]:
    env = {**ENV, "CONVEYOR_HOME": str(home)}
    return conveyor_process(
        ["serve", "-c", str(config), "--port", "0"], env, config.parent, kill=True
    )


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


def test_serve_sigterm_during_a_run_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "job.pid"
    remote = GitRepo.create(
        tmp_path / "remote",
        {".conveyor.yml": f"name: slow\njobs:\n  wait:\n    run: echo $$ > {pid_file}; sleep 60\n"},
    )
    config = tmp_path / "conveyor.toml"
    # `none`: the job's pid file goes to tmp_path (a sandbox has its own /tmp and pids;
    # tests/integration/security checks the same with the sandbox on).
    text = settings_text(remote.clone_url, remote.clone_url, sandbox="none", shutdown_grace=0.5)
    config.write_text(text)
    with _serve_process(config, tmp_path / "home") as server:
        port = server.wait_for_event("server.listening")["port"]
        body = github_push_body(remote.head())
        answer = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/github", content=body, headers=github_headers(body)
        )
        assert answer.status_code == 202
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, server.text()[-2000:]
            time.sleep(0.05)
        job_pid = int(pid_file.read_text())
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        stopped_in = time.monotonic() - started
    store = open_store(tmp_path / "home")
    run = store.get_run(answer.json()["run_id"])
    store.close()
    assert _group_members(job_pid) == []  # the job's shell led its own group
    assert stopped_in < 15
    assert run is not None
    assert run.status is Status.CANCELED


RETRY_STEP = 'if [ "$CONVEYOR_ATTEMPT" = 1 ]; then echo first; exit 3; fi'
RETRY_LATER = """\
name: later
jobs:
  flaky:
    retry: {max: 1, delay: 30s}
    run: |
      if [ "$CONVEYOR_ATTEMPT" = 1 ]; then echo first; exit 3; fi
      echo second
  deploy:
    manual: true
    needs: [flaky]
    run: echo deployed
"""


def _api(base: str, path: str) -> Any:
    answer = httpx.get(base + path, headers={"authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _wait_run(base: str, run_id: str, until: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + 30
    while not until(run := _api(base, f"/api/v1/runs/{run_id}")):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def test_serve_restarted_while_a_job_waits_for_its_retry_runs_the_retry(tmp_path: Path) -> None:
    # With the local executor: the run only waits (no process of it runs), so the stopping
    # server leaves it `pending`, the retry it owes stored as attempt 2, and the next start
    # resumes it; the attempt runs at once, its delay not waited again. The manual job after
    # it, stored `pending` before it was decided, is not taken for a play.
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": RETRY_LATER})
    config = tmp_path / "conveyor.toml"
    text = settings_text(remote.clone_url, remote.clone_url, sandbox="none", shutdown_grace=0.5)
    config.write_text(text)
    home = tmp_path / "home"
    with _serve_process(config, home) as server:
        body = github_push_body(remote.head())
        answer = httpx.post(
            server.base_url + "/webhooks/github", content=body, headers=github_headers(body)
        )
        run_id = answer.json()["run_id"]
        _wait_run(
            server.base_url, run_id, lambda run: [j["attempt"] for j in run["jobs"]][:1] == [2]
        )
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    store = open_store(home)
    stopped = store.get_run(run_id)
    store.close()
    with _serve_process(config, home) as server:
        final = _wait_run(server.base_url, run_id, lambda run: run["finished_at"] is not None)
        log = httpx.get(
            server.base_url + f"/api/v1/runs/{run_id}/jobs/flaky/log",
            headers={"authorization": f"Bearer {API_TOKEN}"},
        )
    lines = [orjson.loads(line) for line in log.content.splitlines()]
    assert stopped is not None
    assert (stopped.status, [(j.status, j.attempt) for j in stopped.jobs]) == (
        Status.PENDING,
        [(Status.PENDING, 2), (Status.PENDING, 0)],
    )
    assert final["status"] == "success", final
    assert [(j["name"], j["status"], j["attempt"]) for j in final["jobs"]] == [
        ("flaky", "success", 2),
        ("deploy", "manual", 0),  # resumed undecided, it waits to be played: nobody played it
    ]
    failure = f"step {RETRY_STEP!r} exited with code 3"
    assert [(line["n"], line["text"]) for line in lines] == [
        (1, "first"),
        (2, failure),
        (3, f"retrying in 30s: {failure}"),
        (4, "attempt 2 of 2"),
        (5, "second"),
    ]


def test_serve_logs_are_json_and_never_hold_a_secret(tmp_path: Path, remote: GitRepo) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text(settings_text(remote.clone_url, remote.clone_url))
    with _serve_process(config, tmp_path / "home") as server:
        port = server.wait_for_event("server.listening")["port"]
        base = f"http://127.0.0.1:{port}"
        body = github_push_body(remote.head())
        run_id = httpx.post(
            f"{base}/webhooks/github", content=body, headers=github_headers(body)
        ).json()["run_id"]
        httpx.post(f"{base}/webhooks/gitlab", json={}, headers={"x-gitlab-token": GL_TOKEN + "x"})
        httpx.get(f"{base}/readyz", headers={"authorization": f"Bearer {API_TOKEN}"})
        server.wait_for_event("run.finished")
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
        output = server.text()
    events = server.events()
    assert all(e["event"] != "<not json>" for e in events), output[-2000:]
    assert {"http.request", "run.queued", "run.finished", "server.stopped"} <= {
        str(e["event"]) for e in events
    }
    assert run_id in output
    for secret in (GH_SECRET, GL_TOKEN, API_TOKEN):
        assert secret not in output


def test_serve_bad_settings_exit_2_naming_the_key(tmp_path: Path, remote: GitRepo) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text(
        settings_text(remote.clone_url, remote.clone_url).replace("GH_HOOK", "NO_SUCH")
    )
    with _serve_process(config, tmp_path / "home") as server:
        code = server.proc.wait(timeout=30)
        output = server.text()
    assert code == 2
    assert "repos[0].secret_env: environment variable NO_SUCH_SECRET is not set" in output


def test_queued_pending_runs_resume_after_restart(tmp_path: Path, remote: GitRepo) -> None:
    home = tmp_path / "home"
    store = open_store(home)
    sha = remote.head()
    pending = store.create_run(
        RunRecord(
            run_id=new_run_id(),
            repo="acme/app",
            ref="main",
            sha=sha,
            event=EventKind.PUSH,
            status=Status.PENDING,
            created_at=datetime.now(UTC),
            trigger={"kind": "push", "ref": "main", "sha": sha, "repo": "acme/app"},
        )
    )
    store.close()
    with serve_app(make_settings(remote), home=home) as server:
        run = server.wait_for_run(pending.run_id)
    assert run.status is Status.SUCCESS


def test_restart_removes_leftover_worktrees(tmp_path: Path, remote: GitRepo) -> None:
    leftover = tmp_path / "home" / "worktrees" / "20261123T000000000Z-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "file").write_text("stale\n")
    with serve_app(make_settings(remote), home=tmp_path / "home"):
        assert not leftover.exists()


def test_zero_workers_store_runs_as_pending(tmp_path: Path, remote: GitRepo) -> None:
    body = github_push_body(remote.head())
    settings = make_settings(remote, max_parallel_runs=0)
    with serve_app(settings, home=tmp_path / "home") as server:
        answer = httpx.post(
            server.url("/webhooks/github"), content=body, headers=github_headers(body)
        )
        ready = httpx.get(server.url("/readyz"))
        time.sleep(0.3)
        run = server.store.get_run(answer.json()["run_id"])
    assert (answer.status_code, ready.status_code) == (202, 200)
    assert run is not None
    assert run.status is Status.PENDING


def test_serve_second_server_on_the_same_home_is_refused(tmp_path: Path, remote: GitRepo) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text(settings_text(remote.clone_url, remote.clone_url))
    with _serve_process(config, tmp_path / "home") as first:
        first.wait_for_event("server.listening")
        with _serve_process(config, tmp_path / "home") as second:
            code = second.proc.wait(timeout=30)
            output = second.text()
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=30) == 0
    assert code == 1
    assert "another conveyor server is using" in output
