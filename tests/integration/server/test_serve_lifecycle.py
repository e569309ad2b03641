"""`conveyor serve` as a real process: SIGTERM during a run, restarts with queued runs,
startup errors, and no secret in any log line."""

from __future__ import annotations

import signal
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import httpx

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
