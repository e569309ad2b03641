"""Figure 1 of issue 4: signed GitHub push webhooks acknowledged per second, with p50/p99
acknowledgement latency, against a bare uvicorn app answering 202 in the same run.

Both servers run as their own process with uvloop + httptools. The client is a small
keep-alive HTTP/1.1 client on asyncio streams (so the client's own cost stays low) with
`--connections` concurrent connections. Every delivery has its own X-GitHub-Delivery and
its own body (its delivery id added to the payload, as real pushes differ), so every one is
verified, de-duplicated (by id and by body digest) and stored as a `pending` run; one
queue worker runs the (trivial) pipelines meanwhile, as in production.

    .venv/bin/python bench/server_webhooks.py [--requests 3000] [--connections 16]
                                              [--rate 250] [--paced 1000] [--diagnose-store]

A second, paced run sends `--paced` deliveries at `--rate` per second to show the
acknowledgement latency of a server that is not saturated. `--diagnose-store` adds the
same intake with the tests' in-memory store instead of SQLite (how much is the store's).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
PATH = "/webhooks/github"
SECRET = "bench-webhook-secret-0123456789abcdef"
BASELINE = """
import socket, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"14")]})
    await send({"type": "http.response.body", "body": b'{"run_id":"x"}'})

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False,
                        log_config=None, lifespan="on")
uvicorn.Server(config).run(sockets=[sock])
"""


# Diagnostic only (--diagnose-store): the same app and intake with the in-memory fake store
# of the tests instead of SQLite, to show how much of the cost is the store's.
MEMORY_SERVER = """
import gc, socket, sys
from pathlib import Path
import uvicorn
from conveyor.logconfig import configure_logging
from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from tests.fakes.memory_store import MemoryRunStore

env = {"BENCH_HOOK_SECRET": sys.argv[2]}
settings = parse_settings(
    '[server]\\nmax_parallel_runs = 0\\n[[repos]]\\nname = "acme/app"\\nprovider = "github"\\n'
    'clone_url = "/nonexistent"\\nsecret_env = "BENCH_HOOK_SECRET"\\n', env)
configure_logging(json=True, secrets=[sys.argv[2]])
app = create_app(settings, store=MemoryRunStore(), env=env, home=Path(sys.argv[1]))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(sock.getsockname()[1], flush=True)
gc.collect()
gc.freeze()
config = uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False,
                        log_config=None, lifespan="on")
uvicorn.Server(config).run(sockets=[sock])
"""


def _payload(sha: str) -> bytes:
    """A push payload of realistic size (GitHub sends the whole repository object)."""
    repository = {
        "id": 1296269,
        "name": "app",
        "full_name": "acme/app",
        "private": False,
        "owner": {"login": "acme", "id": 1, "type": "Organization"},
        "html_url": "https://github.com/acme/app",
        "description": "An application " * 10,
        "default_branch": "main",
        "clone_url": "https://github.com/acme/app.git",
        **{f"{name}_url": f"https://api.github.com/repos/acme/app/{name}" for name in (
            "forks", "keys", "collaborators", "teams", "hooks", "issue_events", "events",
            "assignees", "branches", "tags", "blobs", "git_tags", "git_refs", "trees",
            "statuses", "languages", "stargazers", "contributors", "subscribers",
            "subscription", "commits", "git_commits", "comments", "issue_comment",
            "contents", "compare", "merges", "archive", "downloads", "issues", "pulls",
            "milestones", "notifications", "labels", "releases", "deployments",
        )},
    }  # fmt: skip
    commit = {
        "id": sha,
        "message": "Fix the widget\n\nLonger explanation of the change.",
        "timestamp": "2026-11-23T12:00:00Z",
        "author": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
        "added": [],
        "removed": [],
        "modified": ["src/app.py", "tests/test_app.py"],
    }
    return orjson.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "created": False,
            "deleted": False,
            "forced": False,
            "commits": [commit],
            "head_commit": commit,
            "repository": repository,
            "pusher": {"name": "dev", "email": "dev@example.com"},
            "sender": {"login": "dev", "id": 2},
        }
    )


class _Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _load(
    port: int, body: bytes, total: int, connections: int, rate: float | None = None
) -> dict[str, float]:
    """Send `total` deliveries over `connections` keep-alive connections: as fast as
    answers come back (rate None), or paced at `rate` per second overall, latency then
    counted from each request's scheduled time (no coordinated omission)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = iter(range(total))
    begin = time.perf_counter()

    async def worker() -> None:
        client = _Client(port)
        try:
            for index in remaining:
                scheduled = time.perf_counter()
                if rate is not None:
                    scheduled = begin + index / rate
                    await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                # A body of its own: the server takes a body seen before for a replay.
                delivery = str(uuid.uuid4())
                unique = body[:-1] + b',"bench_delivery":"' + delivery.encode() + b'"}'
                digest = hmac.new(SECRET.encode(), unique, hashlib.sha256).hexdigest()
                headers = {
                    "content-type": "application/json",
                    "x-github-event": "push",
                    "x-github-delivery": delivery,
                    "x-hub-signature-256": "sha256=" + digest,
                }
                status = await client.post(PATH, unique, headers)
                latencies.append(time.perf_counter() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await client.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    wall = time.perf_counter() - begin
    if set(statuses) != {202}:
        raise SystemExit(f"unexpected answers: {statuses}")
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "per_s": total / wall,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}  # fmt: skip
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


def _start_conveyor(tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], int, str]:
    tmp = tmp / f"workers-{workers}"
    tmp.mkdir()
    remote = tmp / "remote"
    remote.mkdir()
    _git(remote, "init", "--quiet", "--initial-branch=main")
    (remote / ".conveyor.yml").write_text("name: bench\njobs:\n  noop:\n    run: 'true'\n")
    _git(remote, "add", "--all")
    _git(remote, "commit", "--quiet", "-m", "bench")
    sha = _git(remote, "rev-parse", "HEAD")
    config = tmp / "conveyor.toml"
    config.write_text(
        f"[server]\nshutdown_grace = 1\nmax_parallel_runs = {workers}\n\n"
        f'[[repos]]\nname = "acme/app"\nprovider = "github"\nclone_url = "{remote}"\n'
        'secret_env = "BENCH_HOOK_SECRET"\n'
    )
    env = {**os.environ, "BENCH_HOOK_SECRET": SECRET, "CONVEYOR_HOME": str(tmp / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", "-c", str(config), "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        event = orjson.loads(line)
        if event.get("event") == "server.listening":
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
            return proc, int(event["port"]), sha
    raise SystemExit("conveyor serve did not start")


def _start_baseline() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, "-c", BASELINE], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _start_memory_store(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", MEMORY_SERVER, str(tmp), SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=250.0, help="paced run: requests/s")
    parser.add_argument("--paced", type=int, default=1000, help="paced run: requests")
    parser.add_argument(
        "--diagnose-store",
        action="store_true",
        help="also measure the intake with the tests' in-memory store instead of SQLite",
    )
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    paced: dict[str, dict[str, float]] = {}
    n, conns = args.requests, args.connections
    with tempfile.TemporaryDirectory() as folder:
        baseline, base_port = _start_baseline()
        try:
            for workers, name in ((0, "conveyor, intake only"), (1, "conveyor, 1 run worker")):
                conveyor, port, sha = _start_conveyor(Path(folder), workers)
                body = _payload(sha)
                try:
                    for target in (base_port, port):  # warm up both
                        asyncio.run(_load(target, body, 300, conns))
                    base = "bare uvicorn (baseline)"
                    results.setdefault(base, asyncio.run(_load(base_port, body, n, conns)))
                    results[name] = asyncio.run(_load(port, body, n, conns))
                    paced.setdefault(
                        base, asyncio.run(_load(base_port, body, args.paced, conns, args.rate))
                    )
                    paced[name] = asyncio.run(_load(port, body, args.paced, conns, args.rate))
                finally:
                    _stop(conveyor)
            if args.diagnose_store:
                memory, port = _start_memory_store(Path(folder))
                try:
                    asyncio.run(_load(port, body, 300, conns))
                    results["intake only, memory store*"] = asyncio.run(_load(port, body, n, conns))
                finally:
                    _stop(memory)
        finally:
            _stop(baseline)
    print(f"payload: {len(body)} bytes, {n} requests, {conns} connections")
    _table("as fast as answered (saturation)", results)
    _table(f"paced at {args.rate:g}/s ({args.paced} requests)", paced)
    if args.diagnose_store:
        print("* diagnostic: the tests' in-memory store instead of SQLite (not a product mode)")


def _table(title: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'server':<28}{'acks/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}")
    base = results["bare uvicorn (baseline)"]
    for name, result in results.items():
        print(
            f"{name:<28}{result['per_s']:>10.0f}{result['p50_ms']:>10.2f}"
            f"{result['p99_ms']:>10.2f}{result['per_s'] / base['per_s']:>8.3f}"
        )


if __name__ == "__main__":
    main()
