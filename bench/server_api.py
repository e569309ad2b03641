"""Figure 2 (issue 4): `GET /api/v1/runs/{id}` latency at 50 concurrent clients while 4 runs
are writing logs.

`conveyor serve` runs as a subprocess (uvloop, httptools, JSON access log to a file, real
SQLite store) and executes 4 real runs whose jobs print about --lines-per-s lines each per
second for the whole measurement. Baseline, measured in the same run and while those 4 runs
keep writing: a bare uvicorn app (same loop and HTTP parser) answering the very same bytes
from memory. The load is 50 keep-alive connections from a minimal raw-socket client (so the
client costs little), rounds alternating baseline / conveyor.

    .venv/bin/python bench/server_api.py [--clients 50] [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "bench-api-token-0123456789abcdef"
PIPELINE = """\
name: bench
jobs:
  writer:
    run: |
      while true; do seq 1 {batch}; sleep 0.1; done
"""
BARE_APP = """
import sys, uvicorn
body = open(sys.argv[1], "rb").read()
headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
            access_log=False, log_level="warning")
"""


def git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "PATH": os.environ["PATH"], "HOME": str(repo)}  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def make_repo(root: Path, lines_per_s: int) -> Path:
    repo = root / "remote"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / ".conveyor.yml").write_text(PIPELINE.format(batch=max(1, lines_per_s // 10)))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "bench")
    return repo


def start_conveyor(root: Path, repo: Path) -> tuple[subprocess.Popen[bytes], int]:
    (root / "conveyor.toml").write_text(
        f'[server]\napi_token_env = "BENCH_TOKEN"\nmax_parallel_runs = 4\nshutdown_grace = 1\n'
        f'home = "home"\n'
        f'[[repos]]\nname = "bench/app"\nprovider = "github"\nclone_url = "{repo}"\n'
        f'secret_env = "BENCH_HOOK"\n'
    )
    env = {**os.environ, "BENCH_TOKEN": TOKEN, "BENCH_HOOK": "bench-hook-secret-0123456789"}
    log_path = root / "server.log"
    conveyor = Path(sys.executable).parent / "conveyor"
    proc = subprocess.Popen(
        [str(conveyor), "serve", "-c", str(root / "conveyor.toml"), "--port", "0"],
        cwd=root,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if '"server.listening"' in line:
                return proc, int(json.loads(line)["port"])
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"conveyor serve did not start; see {log_path}")


def start_bare(root: Path, body: bytes) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    (root / "body.json").write_bytes(body)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(root / "body.json"), str(port)])
    return proc, port


async def request_once(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def raw_get(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()


async def fetch(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await request_once(reader, writer, raw)
    finally:
        writer.close()


async def wait_ready(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await fetch(port, raw_get("/healthz"))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def load(port: int, raw: bytes, clients: int, seconds: float) -> list[float]:
    """Latencies (s) of every request answered in the measured window (after 0.5 s warm-up)."""
    latencies: list[float] = []
    start = time.perf_counter()
    warm_until, stop_at = start + 0.5, start + 0.5 + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < stop_at:
                status, _ = await request_once(reader, writer, raw)
                if status != 200:
                    raise SystemExit(f"unexpected HTTP {status}")
                if now >= warm_until:
                    latencies.append(time.perf_counter() - now)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def trigger_runs(port: int, count: int) -> list[str]:
    body = b'{"repo": "bench/app", "ref": "main"}'
    raw = (
        f"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ids = []
    for _ in range(count):
        status, answer = await fetch(port, raw)
        if status != 202:
            raise SystemExit(f"trigger failed: HTTP {status} {answer[:200]!r}")
        ids.append(json.loads(answer)["run_id"])
    return ids


async def wait_running(port: int, run_ids: list[str]) -> bytes:
    """Waits until every run is running with output; returns the first run's record bytes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        bodies = [await fetch(port, raw_get(f"/api/v1/runs/{rid}")) for rid in run_ids]
        if all(json.loads(b)["status"] == "running" for _, b in bodies):
            await asyncio.sleep(1.0)  # let the writers get going
            return (await fetch(port, raw_get(f"/api/v1/runs/{run_ids[0]}")))[1]
        await asyncio.sleep(0.1)
    raise SystemExit("the runs did not start")


def lines_written(home: Path) -> int:
    return sum(p.stat().st_size for p in home.glob("runs/*/logs/*.jsonl"))


async def measure(args: argparse.Namespace, root: Path) -> None:
    repo = make_repo(root, args.lines_per_s)
    conveyor, port = start_conveyor(root, repo)
    bare: subprocess.Popen[bytes] | None = None
    try:
        await wait_ready(port)
        run_ids = await trigger_runs(port, 4)
        body = await wait_running(port, run_ids)
        bare, bare_port = start_bare(root, body)
        await wait_ready(bare_port)
        path = f"/api/v1/runs/{run_ids[0]}"
        results: dict[str, list[list[float]]] = {"bare": [], "conveyor": []}
        size_before = lines_written(root / "home")
        began = time.perf_counter()
        for _ in range(args.rounds):
            for name, target in (("bare", bare_port), ("conveyor", port)):
                results[name].append(await load(target, raw_get(path), args.clients, args.seconds))
        elapsed = time.perf_counter() - began
        log_mb_s = (lines_written(root / "home") - size_before) / elapsed / 1e6
        report(args, results, len(body), log_mb_s)
    finally:
        for proc in (bare, conveyor):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
        for proc in (bare, conveyor):
            if proc is not None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def report(
    args: argparse.Namespace, results: dict[str, list[list[float]]], size: int, log_mb_s: float
) -> None:
    def summary(rounds: list[list[float]]) -> tuple[float, float, float]:
        p50 = statistics.median(percentile(r, 50) for r in rounds) * 1000
        p99 = statistics.median(percentile(r, 99) for r in rounds) * 1000
        rps = statistics.median(len(r) / args.seconds for r in rounds)
        return p50, p99, rps

    bare, ours = summary(results["bare"]), summary(results["conveyor"])
    print(f"GET /api/v1/runs/{{id}}: {size} bytes, {args.clients} clients, {args.rounds} x "
          f"{args.seconds:g} s per side, 4 runs writing {log_mb_s:.2f} MB/s of logs")  # fmt: skip
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, (p50, p99, rps) in (("bare", bare), ("conveyor", ours)):
        print(f"{name:10} {p50:8.2f} {p99:8.2f} {rps:8.0f}")
    print(f"ratio conveyor/bare: p50 x{ours[0] / bare[0]:.1f}, p99 x{ours[1] / bare[1]:.1f}, "
          f"throughput x{ours[2] / bare[2]:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lines-per-s", type=int, default=2000, help="per run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
