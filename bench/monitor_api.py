"""Figure 2 (issue 5): `GET /api/v1/pipelines/{key}` throughput at 64 concurrent clients
against a bare uvicorn app returning the same bytes, and p99 latency while every upstream
hangs past the deadline.

Processes: the fake upstreams (tests/fakes/upstreams, 50 ms per answer), `conveyor serve`
(uvloop, httptools, SQLite store, the real app with its middleware) watching --targets
GitLab/GitHub/Jenkins targets on a --interval tick (1 s: a sync always under way; conveyor's
default is 30 s) with a 0.5 s deadline, and a bare uvicorn app
(same loop and parser) answering the entry's bytes from memory. The load generator is `wrk`
(Debian package; installed with apt-get when missing), 2 threads, 64 connections, rounds
alternating baseline / conveyor. Then the fake is told to hang every request and, once every
entry is stale, conveyor is measured again while its sync loop keeps timing out. Each
`wrk` run also gives the server process's CPU per request (user + system time from
/proc/<pid>/stat before and after, divided by the requests `wrk` completed).

    .venv/bin/python bench/monitor_api.py [--targets 90] [--seconds 5] [--rounds 3]
                                          [--interval 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.upstreams.scenario import ENV  # noqa: E402

KEY = "team/app0@main"
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

# The monitor's routers alone on a bare FastAPI app (no request-id/access-log middleware),
# after one sync: separates the cost of the routes from the cost of the app around them.
ROUTES_APP = """
import asyncio, os, sys, uvicorn
from pathlib import Path
from fastapi import FastAPI
from conveyor.monitor.service import Monitor
from conveyor.server import pipelines
from conveyor.settings import load_settings
settings = load_settings(Path(sys.argv[1]), os.environ)
monitor = Monitor(settings.monitor, os.environ)
async def sync():
    await monitor.sync_once()
    await monitor.stop()
asyncio.run(sync())
app = FastAPI()
app.state.public_read = True
app.include_router(pipelines.build_router(monitor))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
            access_log=False, log_level="warning")
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    assert found, "wrk is needed: apt-get install wrk"
    return found


def write_config(
    root: Path,
    url: str,
    count: int,
    interval: float = 1.0,
    *,
    monitor: str = "timeout = 0.5\nconcurrency = 32\n",
    repo: Callable[[int], str] = "team/app{}".format,
) -> Path:
    """conveyor.toml watching `count` targets at `url` (GitLab, GitHub, Jenkins in turn;
    target n's repo is `repo(n)`); `monitor`: more lines of the [monitor] table."""
    blocks = [f"[server]\npublic_read = true\n\n[monitor]\ninterval = {interval}\njitter = 0\n"
              f"{monitor}"]  # fmt: skip
    for n in range(count):
        provider = ("gitlab", "github", "jenkins")[n % 3]
        creds = f'token_env = "{provider.upper()}_TOKEN"\n'
        if provider == "jenkins":
            creds += 'user_env = "JENKINS_USER"\n'
        blocks.append(
            f'[[monitor.targets]]\nprovider = "{provider}"\nrepo = "{repo(n)}"\n'
            f'url = "{url}"\n{creds}'
        )
    path = root / "conveyor.toml"
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def start_serve(config: Path, home: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, **ENV, "CONVEYOR_HOME": str(home)}
    out = open(log, "wb")  # noqa: SIM115 - the child writes to it until the end
    child = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "serve", "-c", str(config), "--port", "0"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "server.listening" in line:
                return child, int(json.loads(line)["port"])
        time.sleep(0.1)
    raise RuntimeError("conveyor serve did not start: " + log.read_text(errors="replace")[-2000:])


def wait_for(base: str, is_done: object, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entries = httpx.get(base + "/api/v1/pipelines", timeout=5).json()
        if is_done(entries):  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"entries never became {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> bytes:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.get(url)
            if response.status_code == 200:
                return response.content
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up"
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system, /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(binary: str, url: str, seconds: int, pid: int) -> tuple[float, float, float]:
    """(requests per second, p99 latency in ms, server CPU µs per request)."""
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        [binary, "-t2", "-c64", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6
    done = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non2xx is None, f"{non2xx[1]} error answers"
    return rps, p99_ms, cpu_us / done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=90)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="monitor tick in seconds (default 1)"
    )
    args = parser.parse_args()
    binary = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-bench-monitor-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.upstreams", "--delay", "0.05"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        children.append(fake)
        assert fake.stdout is not None
        upstream = fake.stdout.readline().decode().strip()
        config = write_config(tmp, upstream, args.targets, args.interval)
        serve, port = start_serve(config, tmp / "home", tmp / "serve.log")
        children.append(serve)
        base = f"http://127.0.0.1:{port}"
        wait_for(base, lambda es: all(not e["stale"] for e in es), "fresh")
        body = httpx.get(f"{base}/api/v1/pipelines/{KEY}").content
        (tmp / "body.json").write_bytes(body)
        bare_port, routes_port = free_port(), free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(tmp / "body.json"), str(bare_port)]
        )
        children.append(bare)
        routes = subprocess.Popen(
            [sys.executable, "-c", ROUTES_APP, str(tmp / "conveyor.toml"), str(routes_port)],
            env={**os.environ, **ENV},
            cwd=ROOT,
        )
        children.append(routes)
        bare_url = f"http://127.0.0.1:{bare_port}/"
        routes_url = f"http://127.0.0.1:{routes_port}/api/v1/pipelines/{KEY}"
        assert wait_up(bare_url) == body
        wait_up(routes_url)
        bare_runs, routes_runs, conveyor_runs = [], [], []
        for _ in range(args.rounds):
            bare_runs.append(wrk(binary, bare_url, args.seconds, bare.pid))
            routes_runs.append(wrk(binary, routes_url, args.seconds, routes.pid))
            conveyor_runs.append(
                wrk(binary, f"{base}/api/v1/pipelines/{KEY}", args.seconds, serve.pid)
            )
        httpx.post(upstream + "/_fake/hang")
        wait_for(base, lambda es: all(e["stale"] and e["error"] for e in es), "stale",
                 args.interval + 60)  # fmt: skip
        hung_runs = [wrk(binary, f"{base}/api/v1/pipelines/{KEY}", args.seconds, serve.pid)
                     for _ in range(args.rounds)]  # fmt: skip
        errors = {e["error"] for e in httpx.get(base + "/api/v1/pipelines").json()}
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)

    def summary(runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
        return (
            statistics.median(r for r, _, _ in runs),
            statistics.median(p for _, p, _ in runs),
            statistics.median(c for _, _, c in runs),
        )

    b_rps, b_p99, b_cpu = summary(bare_runs)
    r_rps, r_p99, r_cpu = summary(routes_runs)
    c_rps, c_p99, c_cpu = summary(conveyor_runs)
    h_rps, h_p99, h_cpu = summary(hung_runs)
    print(f"targets={args.targets} tick={args.interval:g}s body={len(body)} B, "
          f"wrk -t2 -c64 -d{args.seconds}s")  # fmt: skip
    print(f"rounds={args.rounds} (median); cpu = server process user+system per request")
    print(f"bare uvicorn:       {b_rps:8.0f} req/s  p99 {b_p99:6.2f} ms  cpu {b_cpu:5.1f} us")
    print(f"routes, bare app:   {r_rps:8.0f} req/s  p99 {r_p99:6.2f} ms  cpu {r_cpu:5.1f} us"
          f"  ratio {r_rps / b_rps:.2f}")  # fmt: skip
    print(f"conveyor, fresh:    {c_rps:8.0f} req/s  p99 {c_p99:6.2f} ms  cpu {c_cpu:5.1f} us"
          f"  ratio {c_rps / b_rps:.2f}")  # fmt: skip
    print(f"conveyor, hung:     {h_rps:8.0f} req/s  p99 {h_p99:6.2f} ms  cpu {h_cpu:5.1f} us"
          f"  errors {sorted(errors)}")  # fmt: skip
    print(f"p99 hung / fresh:     {h_p99 / c_p99:.2f}")


if __name__ == "__main__":
    main()
