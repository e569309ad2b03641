"""Fleet figure 3 (issue 10): 1,000 runs queued at once through the API all finish, none
lost or duplicated.

A real `conveyor serve` ([executor] kind = "celery", PostgreSQL from tests/postgres.py,
`max_parallel_runs` 8), a real redis-server and 2 real `conveyor worker` processes
(concurrency 4, fleet.host.AttemptHost: a checkout per attempt). 1,000 `POST /api/v1/runs`
of a one-job pipeline (`true`) as fast as 8 clients send them; then every run must end
`success` with its one job at attempt 1, the run ids must be distinct, and Redis must hold
exactly 1,000 attempt claims (a job run twice would have claimed twice, or been dropped).

    .venv/bin/python bench/fleet_runs.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.*

from tests.conveyor_process import ConveyorProcess  # noqa: E402
from tests.fakes.git_repos import GitRepo  # noqa: E402
from tests.postgres import find_postgres_bin, start_postgres  # noqa: E402
from tests.redis import start_redis  # noqa: E402

TOKEN = "api-token-0123456789abcdefghij"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _settings(remote: GitRepo) -> str:
    return f"""\
[server]
api_token_env = "CONVEYOR_API_TOKEN"
store_url_env = "CONVEYOR_STORE_URL"
max_parallel_runs = 8
shutdown_grace = 2

[executor]
kind = "celery"
broker_url_env = "CONVEYOR_BROKER_URL"

[sandbox]
mode = "none"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{remote.clone_url}"
secret_env = "GH_HOOK_SECRET"
"""


async def _trigger(base_url: str, sha: str, runs: int) -> list[str]:
    ids: list[str] = []
    slots = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=60) as client:

        async def one() -> None:
            async with slots:
                answer = await client.post(
                    "/api/v1/runs", json={"repo": "acme/app", "ref": "main", "sha": sha}
                )
            answer.raise_for_status()
            ids.append(answer.json()["run_id"])

        async with asyncio.TaskGroup() as group:
            for _ in range(runs):
                group.create_task(one())
    return ids


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cvr-bench-runs-"))
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        print("no PostgreSQL binaries", file=sys.stderr)
        return 1
    postgres = start_postgres(bin_dir)
    broker = start_redis(base / "redis")
    remote = GitRepo.create(base / "remote", {".conveyor.yml": "jobs:\n  a:\n    run: 'true'\n"})
    (base / "conveyor.toml").write_text(_settings(remote))
    (base / "worker.toml").write_text("[worker]\ngrace = 2\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "CONVEYOR_API_TOKEN": TOKEN,
        "GH_HOOK_SECRET": "hook-secret-0123456789abcdefghij",
        "CONVEYOR_STORE_URL": postgres.url(postgres.create_database()),
        "CONVEYOR_BROKER_URL": broker.url(),
        "CONVEYOR_HOME": str(base / "server"),
    }
    processes: list[ConveyorProcess] = []
    try:
        server = ConveyorProcess(["serve", "-c", "conveyor.toml", "--port", "0"], env, base)
        processes.append(server)
        for n in range(2):
            worker_env = {**env, "CONVEYOR_HOME": str(base / f"worker-{n}")}
            args_ = ["worker", "-c", "worker.toml", "--name", f"w{n}", "--concurrency", "4"]
            processes.append(ConveyorProcess(args_, worker_env, base))
        base_url = server.base_url
        started = time.perf_counter()
        ids = asyncio.run(_trigger(base_url, remote.head(), args.runs))
        queued_s = time.perf_counter() - started
        final: dict[str, dict[str, object]] = {}
        with httpx.Client(base_url=base_url, headers=HEADERS, timeout=60) as client:
            deadline = time.monotonic() + 1800
            while len(final) < len(ids) and time.monotonic() < deadline:
                for run_id in ids:
                    if run_id not in final:
                        run = client.get(f"/api/v1/runs/{run_id}").json()
                        if run["status"] not in ("pending", "running"):
                            final[run_id] = run
                time.sleep(0.5)
        done_s = time.perf_counter() - started
        claims = sum(1 for _ in redis.Redis.from_url(broker.url()).scan_iter("conveyor:claim:*"))
    finally:
        for process in processes:
            process.stop(grace_s=30)
        broker.stop()
        postgres.stop()
    ok = [
        r
        for r in final.values()
        if r["status"] == "success"
        and [(j["status"], j["attempt"]) for j in r["jobs"]] == [("success", 1)]  # type: ignore[attr-defined, index]
    ]
    print(f"{args.runs} runs through POST /api/v1/runs, 2 workers x 4")
    print(f"  queued in:            {queued_s:.1f} s")
    print(f"  all final after:      {done_s:.1f} s")
    print(f"  distinct run ids:     {len(set(ids))}")
    print(f"  success, attempt 1:   {len(ok)}")
    print(f"  attempt claims:       {claims}")
    good = len(set(ids)) == len(ok) == claims == args.runs
    print("  none lost or duplicated" if good else "  LOST OR DUPLICATED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
