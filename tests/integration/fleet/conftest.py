"""The fleet end to end: a real `conveyor serve` ([executor] kind = "celery", PostgreSQL
store), a real redis-server, and two real worker processes with different queues.

One fleet per test module (starting Celery workers costs seconds each): `fleet` holds the
processes, restarts the server or a worker for the fault tests, triggers runs through the
API and waits for their records. Workers: `linux` (queue linux) and `gpu-box` (queues linux
and gpu), so a `[gpu]` job lands on gpu-box only and a `[linux]` job on either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conveyor_process import ConveyorProcess
from tests.fakes.git_repos import GitRepo
from tests.postgres import PostgresServer
from tests.redis import RedisServer

API_TOKEN = "api-token-0123456789abcdefghij"
PENDING_TIMEOUT_S = 3
WORKERS = {"linux": ("linux",), "gpu-box": ("linux", "gpu")}


@dataclass
class Fleet:
    base: Path
    remote: GitRepo
    env: dict[str, str]
    server: ConveyorProcess | None = None
    workers: dict[str, ConveyorProcess] = field(default_factory=dict)

    # ------------------------------------------------------------ processes
    def start_server(self) -> None:
        config = self.base / "conveyor.toml"
        self.server = ConveyorProcess(["serve", "-c", str(config), "--port", "0"], self.env,
                                      self.base)  # fmt: skip
        self.server.wait_for_event("server.listening")

    def stop_server(self, *, kill: bool = False) -> None:
        if self.server is not None:
            self.server.stop(kill=kill, grace_s=30)
            self.server = None

    def start_worker(self, name: str) -> None:
        home = self.base / f"worker-{name}"
        env = {**self.env, "CONVEYOR_HOME": str(home)}
        queues = [arg for queue in WORKERS[name] for arg in ("--queue", queue)]
        args = ["worker", "-c", str(self.base / "worker.toml"), "--name", name,
                "--concurrency", "4", *queues]  # fmt: skip
        worker = self.workers[name] = ConveyorProcess(args, env, self.base)
        deadline = time.monotonic() + 30
        while name not in {w["name"] for w in self.api("GET", "/api/v1/workers")["workers"]}:
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker {name} did not join: {worker.text()[-3000:]}")
            time.sleep(0.05)

    def stop_worker(self, name: str, *, kill: bool = False) -> str:
        return self.workers.pop(name).stop(kill=kill, grace_s=30).decode(errors="replace")

    # ------------------------------------------------------------ API
    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        answer = httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def trigger(self, pipeline: str) -> str:
        sha = self.remote.commit({".conveyor.yml": pipeline})
        run = self.api("POST", "/api/v1/runs", json={"repo": "acme/app", "ref": "main",
                                                     "sha": sha})  # fmt: skip
        return str(run["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.api("GET", f"/api/v1/runs/{run_id}")
        return run

    def job(self, run_id: str, name: str) -> dict[str, Any]:
        return next(j for j in self.run(run_id)["jobs"] if j["name"] == name)

    def wait(
        self, run_id: str, until: Callable[[dict[str, Any]], bool], timeout_s: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(run_id)
            if until(run):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} never got there: {run}")
            time.sleep(0.05)

    def wait_final(self, run_id: str, timeout_s: float = 30) -> dict[str, Any]:
        final = ("success", "failed", "canceled", "skipped")
        return self.wait(run_id, lambda run: run["status"] in final, timeout_s)

    def worker_running(self, attempt: str, timeout_s: float = 30) -> str:
        """The name of the worker that runs `attempt` (`GET /api/v1/workers`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for worker in self.api("GET", "/api/v1/workers")["workers"]:
                if attempt in worker["running"]:
                    return str(worker["name"])
            time.sleep(0.05)
        raise AssertionError(f"no worker runs {attempt}")

    def log(self, run_id: str, job: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        answer = httpx.get(f"{self.base_url}/api/v1/runs/{run_id}/jobs/{job}/log",
                           headers=headers, timeout=30)  # fmt: skip
        import orjson

        return [orjson.loads(line) for line in answer.content.splitlines() if line.strip()]


def fleet_settings(remote: GitRepo) -> str:
    return f"""\
[server]
api_token_env = "CONVEYOR_API_TOKEN"
store_url_env = "CONVEYOR_STORE_URL"
shutdown_grace = 2

[executor]
kind = "celery"
broker_url_env = "CONVEYOR_BROKER_URL"
pending_timeout = {PENDING_TIMEOUT_S}

[sandbox]
mode = "none"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{remote.clone_url}"
secret_env = "GH_HOOK_SECRET"
"""


F = TypeVar("F", bound=Fleet)


@contextlib.contextmanager
def running_fleet(
    base: Path,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    *,
    make: Callable[[Path, GitRepo, dict[str, str]], F],
    server_url: str | None = None,
    workers: Iterable[str] = tuple(WORKERS),
) -> Iterator[F]:
    """A real serve (PostgreSQL, Redis) and `workers` (names the Fleet's `start_worker`
    knows), started in `base` for a repo made there; `make(base, remote, env)` builds the
    Fleet (or a subclass); all stopped after."""
    remote = GitRepo.create(base / "remote", {"README": "fleet\n"})
    database = postgres_server.create_database()
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "CONVEYOR_API_TOKEN": API_TOKEN,
        "GH_HOOK_SECRET": "hook-secret-0123456789abcdefghij",
        "CONVEYOR_STORE_URL": postgres_server.url(database),
        "CONVEYOR_BROKER_URL": redis_server.url(redis_server.reserved_database()),
        "CONVEYOR_HOME": str(base / "server-home"),
    }
    settings = fleet_settings(remote)
    if server_url is not None:
        settings = settings.replace(
            'kind = "celery"\n', f'kind = "celery"\nserver_url = "{server_url}"\n'
        )
    (base / "conveyor.toml").write_text(settings)
    (base / "worker.toml").write_text("[worker]\ngrace = 2\n")
    fleet = make(base, remote, env)
    try:
        fleet.start_server()
        for name in workers:
            fleet.start_worker(name)
        yield fleet
    finally:
        for name in list(fleet.workers):
            with contextlib.suppress(Exception):
                fleet.stop_worker(name)
        fleet.stop_server()
        with contextlib.suppress(Exception):
            postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    with running_fleet(base, redis_server, postgres_server, make=Fleet) as running:
        yield running


def processes_with(marker: str) -> list[int]:
    """PIDs of this host's processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid()]


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
