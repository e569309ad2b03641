"""Files between jobs on two real workers, end to end: a real `conveyor serve` (celery
executor, PostgreSQL, `[executor] server_url`), a real redis-server and two `conveyor
worker` processes whose tags do not overlap, each with its own home. A GitLab pipeline's
first job (on the gpu worker) leaves an artifact, a dotenv variable and a cache; the second
(on the cpu worker) receives all three through the server's files API, with the run token
the server put in each task."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conveyor_process import ConveyorProcess
from tests.fakes.git_repos import GitRepo
from tests.integration.fleet.conftest import Fleet, running_fleet
from tests.postgres import PostgresServer
from tests.redis import RedisServer

WORKERS = {"cpu": ("linux",), "gpu-box": ("gpu",)}
PIPELINE = """\
stages: [build, test]
build:
  stage: build
  tags: [gpu]
  cache: {key: deps, paths: [deps/]}
  script:
    - mkdir -p dist deps
    - echo "built from $(cat README)" > dist/app.txt
    - echo "lib v1" > deps/lib.txt
    - echo "VERSION=1.2.3" > build.env
  artifacts:
    paths: [dist/]
    reports: {dotenv: build.env}
test:
  stage: test
  tags: [linux]
  needs: [build]
  cache: {key: deps, paths: [deps/], policy: pull}
  script:
    - cat dist/app.txt
    - echo "version=$VERSION"
    - cat deps/lib.txt
"""


@dataclass
class FilesFleet(Fleet):
    """The conftest's fleet on a port known in advance (the workers reach the server at
    `[executor] server_url`), with workers that share no tag."""

    port: int = 0

    def start_server(self) -> None:
        args = ["serve", "-c", str(self.base / "conveyor.toml"), "--port", str(self.port)]
        self.server = ConveyorProcess(args, self.env, self.base)
        self.server.wait_for_event("server.listening")

    def start_worker(self, name: str) -> None:
        env = {**self.env, "CONVEYOR_HOME": str(self.base / f"worker-{name}")}
        queues = [arg for queue in WORKERS[name] for arg in ("--queue", queue)]
        args = ["worker", "-c", str(self.base / "worker.toml"), "--name", name,
                "--concurrency", "2", *queues]  # fmt: skip
        worker = self.workers[name] = ConveyorProcess(args, env, self.base)
        deadline = time.monotonic() + 30
        while name not in {w["name"] for w in self.api("GET", "/api/v1/workers")["workers"]}:
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {name} did not join: {worker.text()[-3000:]}")
            time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> Iterator[FilesFleet]:
    port = _free_port()

    def make(base: Path, remote: GitRepo, env: dict[str, str]) -> FilesFleet:
        return FilesFleet(base, remote, env, port=port)

    with running_fleet(
        tmp_path_factory.mktemp("files-fleet"),
        redis_server,
        postgres_server,
        make=make,
        server_url=f"http://127.0.0.1:{port}",
        workers=tuple(WORKERS),
    ) as running:
        yield running


def test_an_artifact_a_dotenv_variable_and_a_cache_reach_the_other_worker(
    fleet: FilesFleet,
) -> None:
    sha = fleet.remote.commit({".gitlab-ci.yml": PIPELINE})
    body = {"repo": "acme/app", "ref": "main", "sha": sha, "event": "push"}
    run_id = str(fleet.api("POST", "/api/v1/runs", json=body)["run_id"])
    run = fleet.wait_final(run_id, timeout_s=60)
    assert run["status"] == "success", (run, fleet.log(run_id, "build"), fleet.log(run_id, "test"))
    assert {job["name"]: job["worker"] for job in run["jobs"]} == {
        "build": "gpu-box",
        "test": "cpu",
    }
    texts = [line["text"] for line in fleet.log(run_id, "test") if line["stream"] == "stdout"]
    assert texts == ["built from fleet", "version=1.2.3", "lib v1"]
    homes = [fleet.base / "worker-cpu", fleet.base / "worker-gpu-box"]
    assert not any((home / "attempts").exists() and any((home / "attempts").iterdir())
                   for home in homes)  # fmt: skip
