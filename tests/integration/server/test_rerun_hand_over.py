"""A play that reaches a run as its last job ended waits for the run's final record, then
resumes it (runs.queue). When that record comes too late the play is refused 409
`run_ending` within the request's deadline, having done nothing, and asked again once the
run has ended it resumes the run.

A real server on loopback, a real git repo as the remote, and the server's `git` found
first on PATH as a wrapper that holds `git worktree remove` of the run's worktree (the
server's last step after the run's engine ended) until the test's release file exists, then
runs the real git: the window between the last job's end and the run's final record is the
test's to hold open."""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, ENV, Served, make_settings, serve_app

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
REQUEST_TIMEOUT_S = 2.0
MANUAL = """\
name: manual
jobs:
  build:
    run: echo built
  deploy:
    manual: true
    needs: [build]
    run: echo deployed
"""


def git_holding_worktree_removal(folder: Path, worktrees: Path, held: Path, release: Path) -> str:
    """A PATH whose `git` holds `worktree remove` of a folder in `worktrees` (touching
    `held`) until `release` exists (at most 30 s), then runs the real git."""
    real_git = shutil.which("git")
    assert real_git is not None
    folder.mkdir()
    script = folder / "git"
    script.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" worktree remove --force {worktrees}/"*)\n'
        f"  touch {shlex.quote(str(held))}\n"
        f"  i=0; while [ ! -e {shlex.quote(str(release))} ] && [ $i -lt 600 ]; do\n"
        "    sleep 0.05; i=$((i + 1)); done ;;\n"
        "esac\n"
        f'exec {shlex.quote(real_git)} "$@"\n'
    )
    script.chmod(0o755)
    return f"{folder}:{ENV['PATH']}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": MANUAL})
    home = tmp_path / "home"
    path = git_holding_worktree_removal(
        tmp_path / "bin", home / "worktrees", tmp_path / "held", tmp_path / "release"
    )
    settings = make_settings(remote, sandbox="none", request_timeout=REQUEST_TIMEOUT_S)
    with serve_app(settings, home=home, env={**ENV, "PATH": path}) as served:
        try:
            yield served
        finally:  # the server's stop waits for its run's worktree removal
            (tmp_path / "release").touch()


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def play(server: Served, run_id: str) -> httpx.Response:
    return httpx.post(server.url(f"/api/v1/runs/{run_id}/jobs/deploy/play"), headers=AUTH)


def test_play_whose_run_is_recorded_too_late_is_409_run_ending(
    server: Served, tmp_path: Path
) -> None:
    answer = httpx.post(
        server.url("/api/v1/runs"), json={"repo": "acme/app", "ref": "main"}, headers=AUTH
    )
    run_id = answer.json()["run_id"]
    wait_for_file(tmp_path / "held")  # the engine ended: the server removes its worktree
    began = time.monotonic()
    refused = play(server, run_id)
    waited_s = time.monotonic() - began
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (409, "run_ending"), refused.text
    assert waited_s < REQUEST_TIMEOUT_S  # its own answer, before the request's deadline
    assert error["message"] == (
        f"run {run_id}: its last job ended and its final record was not written within "
        "1.6 s; nothing was done (play 'deploy' again once the run has ended: that resumes it)"
    )
    stored = server.store.get_run(run_id)
    assert stored is not None
    assert {job.name: str(job.status) for job in stored.jobs}["deploy"] == "manual"
    (tmp_path / "release").touch()
    deadline = time.monotonic() + 30
    while (again := play(server, run_id)).status_code != 202:
        assert time.monotonic() < deadline, again.text
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while True:
        run = server.store.get_run(run_id)
        assert run is not None
        if {job.name: str(job.status) for job in run.jobs}["deploy"] == "success":
            break
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
