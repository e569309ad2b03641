"""A real conveyor server with a running run whose files a worker may move: the app under
uvicorn on loopback (tests/integration/server/conftest.serve_app), its store seeded with a
run that is `running` (no run worker picks it up: max_parallel_runs = 0) and the run's token
made from the server's own fleet key."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.fleet.tokens import load_fleet_key, run_token
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store.paths import new_run_id
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import PIPELINE, Served, make_settings, serve_app

__all__ = [
    "FilesServer", "files_server", "remote", "running_run", "seed_running_run", "serving",
]  # fmt: skip


@pytest.fixture
def remote(tmp_path: Path) -> GitRepo:
    """The repository the server's `acme/app` clones (a real git repo in tmp_path)."""
    return GitRepo.create(tmp_path / "remote", {".conveyor.yml": PIPELINE, "README": "hi\n"})


@dataclass
class FilesServer:
    served: Served
    run_id: str
    token: str

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def token_of(self, run_id: str) -> str:
        return run_token(load_fleet_key(self.served.home), run_id)

    def finish(self, run_id: str | None = None) -> None:
        self.served.store.update_run(run_id or self.run_id, status=Status.SUCCESS)


def seed_running_run(served: Served, jobs: Sequence[str], *, sha: str = "b" * 40) -> str:
    created = datetime.now(UTC)
    run = served.store.create_run(
        RunRecord(
            run_id=new_run_id(created),
            repo="acme/app",
            ref="main",
            sha=sha,
            event=EventKind.PUSH,
            status=Status.RUNNING,
            created_at=created,
            started_at=created,
        )
    )
    for name in jobs:
        record = JobRecord(name=name, stage="test", status=Status.RUNNING, attempt=1)
        served.store.save_job(run.run_id, record)
    return run.run_id


@contextmanager
def files_server(
    tmp_path: Path, remote: GitRepo, jobs: Sequence[str] = ("build", "test"), **server: Any
) -> Iterator[FilesServer]:
    """A server of its own with one running run of `jobs`."""
    with serving(tmp_path, remote, **server) as served:
        yield running_run(served, jobs, sha=remote.head())


@contextmanager
def serving(tmp_path: Path, remote: GitRepo, **server: Any) -> Iterator[Served]:
    """The server alone (module-scoped fixtures share it; each test seeds its own run)."""
    settings = make_settings(remote, max_parallel_runs=0, **server)
    with serve_app(settings, home=tmp_path / "server") as served:
        yield served


def running_run(
    served: Served, jobs: Sequence[str] = ("build", "test"), *, sha: str = "b" * 40
) -> FilesServer:
    """A new running run of `jobs` on `served`, with its token."""
    run_id = seed_running_run(served, jobs, sha=sha)
    return FilesServer(served, run_id, run_token(load_fleet_key(served.home), run_id))
