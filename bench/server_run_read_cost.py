"""Where the time of `GET /api/v1/runs/{id}` goes inside `conveyor serve` (issue 4, figure 2,
diagnostic): a SQLite store holding one running run; `store.get_run` alone, then the whole
GET through the app `create_app` builds, called in-process without HTTP (JSON access log to
a file). Microseconds per call, median of rounds. Run it from another checkout's folder to
measure that version: it imports `src/` relative to the current directory.

    .venv/bin/python bench/server_run_read_cost.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd() / "src"))

from conveyor.logconfig import configure_logging
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.server.app import create_app
from conveyor.server.middleware import bind_access_log
from conveyor.settings import parse_settings
from conveyor.store import open_store

RUN_ID = "01J0000000000000000000000A"


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _measure(requests: int, rounds: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-bench-run-read-"))
    store = open_store(tmp / "home")
    job = JobRecord(name="writer", stage="test", status=Status.RUNNING)
    store.create_run(
        RunRecord(
            RUN_ID, "acme/app", "main", "a" * 40, EventKind.PUSH, Status.RUNNING,
            created_at=datetime.now(UTC), jobs=(job,),
        )
    )  # fmt: skip
    settings = parse_settings("[server]\npublic_read = true\n", {})
    app = create_app(settings, store=store, env={}, home=tmp / "home")
    path = f"/api/v1/runs/{RUN_ID}"
    scope: dict[str, Any] = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "http_version": "1.1",
        "scheme": "http", "root_path": "", "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }  # fmt: skip
    statuses: set[int] = set()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))

    runs: dict[str, list[float]] = {"store": [], "route": []}
    with (tmp / "serve.log").open("w") as out:
        configure_logging(json=True, secrets=["bench-secret-0123456789"], stream=out)
        bind_access_log()
        try:
            for _ in range(rounds):
                began = time.perf_counter()
                for _ in range(requests):
                    store.get_run(RUN_ID)
                runs["store"].append((time.perf_counter() - began) / requests * 1e6)
                began = time.perf_counter()
                for _ in range(requests):
                    await app(dict(scope), _receive, send)
                runs["route"].append((time.perf_counter() - began) / requests * 1e6)
        finally:
            store.close()
    if statuses != {200}:
        raise SystemExit(f"unexpected answers: {sorted(statuses)}")
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(_measure(args.requests, args.rounds))
    print(f"GET /api/v1/runs/{{id}} in-process, {args.requests} x {args.rounds} (median us)")
    print(f"store.get_run:             {result['store']:8.1f} us")
    print(f"whole GET via create_app:  {result['route']:8.1f} us")


if __name__ == "__main__":
    main()
