"""Attacks of a pushed job on a real `conveyor serve` (issue 15, items 1-3): the job runs in
the server's default sandbox and tries to read the server's processes, environment, home
and descriptors, and to print the server's secrets; the server is killed -9 while a job
runs and must start again at once; a server without a working sandbox refuses to start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conveyor_process import ConveyorProcess
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    ENV,
    GH_SECRET,
    GL_TOKEN,
    github_headers,
    github_push_body,
    settings_text,
)
from tests.sandboxing import requires_bwrap

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


class Serve(ConveyorProcess):
    """A `conveyor serve` process, with the requests these tests make of it."""

    def push(self, remote: GitRepo) -> str:
        body = github_push_body(remote.head())
        answer = httpx.post(
            f"{self.base_url}/webhooks/github", content=body, headers=github_headers(body)
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    def wait_run(
        self, run_id: str, *, status: str = "final", timeout_s: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = httpx.get(f"{self.base_url}/api/v1/runs/{run_id}", headers=AUTH).json()
            is_final = run["status"] in ("success", "failed", "canceled")
            if (status == "final" and is_final) or run["status"] == status:
                return dict(run)
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} not {status}")

    def log_texts(self, run_id: str, job: str) -> list[str]:
        answer = httpx.get(f"{self.base_url}/api/v1/runs/{run_id}/jobs/{job}/log", headers=AUTH)
        return [orjson.loads(line)["text"] for line in answer.text.splitlines() if line]


@contextmanager
def serve(config: Path, home: Path, port: int = 0, **env: str) -> Iterator[Serve]:
    server = Serve(
        ["serve", "-c", str(config), "--port", str(port)],
        {**ENV, "CONVEYOR_HOME": str(home), **env},
        config.parent,
    )
    try:
        yield server
    finally:
        server.stop()


def _write_config(tmp_path: Path, remote: GitRepo, sandbox: str = "bwrap") -> Path:
    config = tmp_path / "conveyor.toml"
    config.write_text(settings_text(remote.clone_url, remote.clone_url, sandbox=sandbox))
    return config


def _processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found


def _wait_gone(marker: str, timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


PEEK = """\
name: peek
jobs:
  peek:
    run: |
      echo "procs=$(ls /proc | grep -c '^[0-9]')"
      echo "server=$(cat /proc/{server_pid}/environ 2>/dev/null | tr '\\0' '\\n' | grep -c TOKEN)"
      echo "parent=$(cat /proc/$PPID/environ 2>/dev/null | tr '\\0' '\\n' | grep -c TOKEN)"
      echo "home=$(ls -A {home} | tr '\\n' ' ')"
      echo "workspaces=$(ls -A {home}/worktrees | wc -l)"
      echo "db=$(cat {home}/conveyor.db 2>/dev/null | wc -c)"
      echo "secrets {api} {gh} {gl}"
"""


@requires_bwrap
def test_sandboxed_job_cannot_see_server_processes_environment_home_or_descriptors(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    remote = GitRepo.create(tmp_path / "remote", {"README": "x"})
    config = _write_config(tmp_path, remote)
    with serve(config, home) as server:
        pipeline = PEEK.format(
            server_pid=server.proc.pid, home=home, api=API_TOKEN, gh=GH_SECRET, gl=GL_TOKEN
        )
        remote.commit({".conveyor.yml": pipeline})
        run_id = server.push(remote)
        run = server.wait_run(run_id)
        texts = server.log_texts(run_id, "peek")
    assert run["status"] == "success", texts
    seen = dict(t.split("=", 1) for t in texts if "=" in t and not t.startswith("secrets"))
    # bwrap's init, the shell, the $(…) subshell, ls, grep: nothing of the host
    assert int(seen["procs"]) <= 5
    assert (seen["server"], seen["parent"], seen["db"]) == ("0", "0", "0")
    # Of conveyor's home only the way to its own workspace: no database, logs or mirrors.
    assert (seen["home"], seen["workspaces"]) == ("worktrees ", "1")
    assert "secrets [MASKED] [MASKED] [MASKED]" in texts


@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=requires_bwrap)])
def test_job_inherits_no_descriptor_of_the_server(tmp_path: Path, mode: str) -> None:
    remote = GitRepo.create(
        tmp_path / "remote",
        {".conveyor.yml": "name: fds\njobs:\n  fds:\n    run: ls -l /proc/$$/fd\n"},
    )
    config = _write_config(tmp_path, remote, sandbox=mode)
    with serve(config, tmp_path / "home") as server:
        run_id = server.push(remote)
        assert server.wait_run(run_id)["status"] == "success"
        texts = server.log_texts(run_id, "fds")
        held = _descriptors(server.proc.pid)  # its listening socket, database, connections
    links = {  # fd -> what it is; not the folder `ls` reads
        t.split(" -> ")[0].rsplit(" ", 1)[1]: t.split(" -> ")[1]
        for t in texts
        if " -> " in t and not t.endswith("/fd")
    }
    streams = {links["0"], links["1"], links["2"]}
    assert links["0"] == "/dev/null"
    # Its three streams and nothing else: not even copies of its own (uvloop's, once).
    assert sorted(links) == ["0", "1", "2"], links
    assert not (streams - {"/dev/null"}) & held, (links, held)
    assert any(target.endswith("conveyor.db") for target in held)  # it does hold one


def _descriptors(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(str(fd.readlink()))
        except OSError:
            continue
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=requires_bwrap)])
def test_server_restarts_at_once_after_kill9_while_a_job_runs(tmp_path: Path, mode: str) -> None:
    marker = f"{time.monotonic_ns() % 100000}.123"  # a unique sleep length
    remote = GitRepo.create(
        tmp_path / "remote", {".conveyor.yml": f"name: s\njobs:\n  s:\n    run: sleep {marker}\n"}
    )
    config = _write_config(tmp_path, remote, sandbox=mode)
    port = _free_port()
    with serve(config, tmp_path / "home", port) as first:
        run_id = first.push(remote)
        first.wait_run(run_id, status="running")
        deadline = time.monotonic() + 10
        while not _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_with(marker), first.log_texts(run_id, "s")
        first.proc.kill()
        first.proc.wait(timeout=10)
    if mode == "none":  # its own session: the job outlives the server, as in the issue
        assert _processes_with(marker)
    else:  # --die-with-parent: the sandbox goes with the server
        assert _wait_gone(marker) == []
    started = time.monotonic()
    with serve(config, tmp_path / "home", port) as second:
        second.wait_for_event("server.listening")
        restarted_in = time.monotonic() - started
        final = second.wait_run(run_id)
    assert restarted_in < 15
    assert final["status"] in ("failed", "canceled")  # closed by the new server, not run twice
    assert _wait_gone(marker) == []


def test_server_refuses_to_start_when_the_sandbox_cannot_run(tmp_path: Path) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"README": "x"})
    config = _write_config(tmp_path, remote)
    with serve(config, tmp_path / "home", PATH="/nonexistent") as server:
        code = server.proc.wait(timeout=30)
    text = server.text()
    assert code == 2
    assert 'sandbox.mode: "bwrap" cannot run here (bwrap is not installed)' in text
    assert "Traceback" not in text


def test_server_without_sandbox_warns_at_every_start(tmp_path: Path) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"README": "x"})
    config = _write_config(tmp_path, remote, sandbox="none")
    for _ in range(2):
        with serve(config, tmp_path / "home") as server:
            warning = server.wait_for_event("server.sandbox_off")
        assert warning["level"] == "warning"


UNDUMPABLE_CHILD = """
import ctypes, os, sys, time
from conveyor.commands.hostguard import make_undumpable
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again after the change of user
if sys.argv[1] == "undumpable":
    make_undumpable()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize(("how", "owner"), [("dumpable", 65534), ("undumpable", 0)])
def test_make_undumpable_gives_its_proc_files_to_root(how: str, owner: int) -> None:
    """What `conveyor serve` does first: a process of the same user can no longer open its
    /proc/<pid>/environ (the files belong to root once it is not dumpable)."""
    if os.getuid() != 0:
        pytest.skip("changing to another user to compare needs root")
    child = subprocess.Popen(
        [sys.executable, "-c", UNDUMPABLE_CHILD, how],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        assert Path(f"/proc/{child.pid}/environ").stat().st_uid == owner
    finally:
        child.kill()
        child.communicate(timeout=10)
