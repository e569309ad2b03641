"""Where the time of a monitor read goes inside `conveyor serve` (issue 5, figure 2,
diagnostic): the app built by `create_app` is called in-process, without HTTP, for
`GET /api/v1/pipelines` (public reads), in the same run as a bare ASGI app answering the same
bytes. Three variants: logging as `conveyor serve` configures it (JSON lines to a file,
secrets masked), the same with every event dropped by structlog before rendering (what the
access event costs), and the bare app. Microseconds per request, median of rounds.

    .venv/bin/python bench/server_frame_cost.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import structlog  # noqa: E402

from conveyor.logconfig import configure_logging  # noqa: E402
from conveyor.server.app import create_app  # noqa: E402
from conveyor.server.middleware import bind_access_log  # noqa: E402
from conveyor.settings import parse_settings  # noqa: E402
from conveyor.store import open_store  # noqa: E402

SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/api/v1/pipelines",
    "raw_path": b"/api/v1/pipelines",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk")],
    "http_version": "1.1",
    "scheme": "http",
    "root_path": "",
    "server": ("127.0.0.1", 8080),
    "client": ("127.0.0.1", 50000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[]"})


def _drop(logger: Any, method: str, event: Any) -> Any:
    raise structlog.DropEvent


async def _per_request_us(app: Any, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        await app(dict(SCOPE), _receive, _send)
    return (time.perf_counter() - began) / count * 1e6


async def _measure(requests: int, rounds: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-bench-frame-"))
    settings = parse_settings("[server]\npublic_read = true\n", {})
    store = open_store(tmp / "home")
    app = create_app(settings, store=store, env={}, home=tmp / "home")
    runs: dict[str, list[float]] = {"logged": [], "dropped": [], "bare": []}
    with (tmp / "serve.log").open("w") as out:
        try:
            for _ in range(rounds):
                configure_logging(json=True, secrets=["bench-secret-0123456789"], stream=out)
                bind_access_log()
                runs["logged"].append(await _per_request_us(app, requests))
                structlog.configure(processors=[_drop])
                bind_access_log()
                runs["dropped"].append(await _per_request_us(app, requests))
                runs["bare"].append(await _per_request_us(_bare, requests))
        finally:
            store.close()
    return {name: statistics.median(values) for name, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(_measure(args.requests, args.rounds))
    print(f"GET /api/v1/pipelines in-process, {args.requests} x {args.rounds} (median us)")
    print(f"create_app, access event as serve logs it: {result['logged']:6.2f} us")
    print(f"create_app, access event dropped:          {result['dropped']:6.2f} us")
    print(f"bare ASGI app, same call:                  {result['bare']:6.2f} us")
    print(f"the access event's share: {result['logged'] - result['dropped']:.2f} us")


if __name__ == "__main__":
    main()
