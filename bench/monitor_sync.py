"""Figure 1 (issue 5): one full monitor sync of 1,000 targets against a fake upstream that
answers every request after 50 ms, at concurrency 64, and the requests a second sync with
unchanged data costs.

The fake GitLab/GitHub/Jenkins server runs as its own process (tests/fakes/upstreams, auto
data: 5 records per repo). Targets: 334 GitLab, 333 GitHub, 333 Jenkins. Baseline, measured
in the same run against the same server: a bare httpx loop sending the very same 1,000 GETs
at the same concurrency over the same client layout as the monitor (8 clients of 8
connections; no validation, no cache, no metrics). Also shown: the same loop with a single
64-connection client, the layout the monitor avoids (httpcore's pool costs grow with its
connection count). Rounds alternate baseline /
monitor; the figure is the median.

Issue 13 adds the 10,000-target case (`--targets 10000`): the first sync's ratio to the
floor `ceil(targets / concurrency) x delay` and the monitor's resident memory (VmRSS of this
process, which holds the monitor, after the first sync, and its peak). The monitor runs on
uvloop, as in `conveyor serve` (`--loop asyncio` for the default loop); `--skip-bare` leaves
out the httpx baselines (minutes at 10,000 targets). CPU seconds of this process and of the
fake upstream process are printed per first sync.

`--serve` runs the real server instead: `conveyor serve` (uvloop, SQLite store) watching
`--targets` targets (interval 30 s, concurrency 64, timeout 8 s) while this process sends
`GET /api/v1/pipelines/{key}` at `--rate` per second (open loop, keep-alive) and records each
latency. Reported: the first tick's duration (the server's `sync.tick_finished` event) and its
ratio to the floor, the server's VmRSS after the first tick and its peak (VmHWM), and the p99
latency during the first tick (all targets at once), during the second tick (spread over the
interval by default; `--no-spread`: all at once again) and while idle between them.

    .venv/bin/python bench/monitor_sync.py [--targets 1000] [--concurrency 64] [--rounds 3]
    .venv/bin/python bench/monitor_sync.py --targets 10000 --rounds 3 --skip-bare
    .venv/bin/python bench/monitor_sync.py --targets 10000 --serve [--no-spread] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.fakes.upstreams.scenario import ENV  # noqa: E402

from conveyor.monitor.providers.jenkins import TREE, job_path  # noqa: E402
from conveyor.monitor.service import Monitor  # noqa: E402
from conveyor.settings.monitor import MonitorSettings  # noqa: E402

PROVIDERS = ("gitlab", "github", "jenkins")


def start_fake(delay_s: float) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.upstreams", "--delay", str(delay_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def targets(url: str, count: int) -> list[dict[str, str]]:
    out = []
    for n in range(count):
        provider = PROVIDERS[n % 3]
        target = {"provider": provider, "repo": f"team{n % 7}/app{n}", "url": url,
                  "token_env": f"{provider.upper()}_TOKEN"}  # fmt: skip
        if provider == "jenkins":
            target["user_env"] = "JENKINS_USER"
        out.append(target)
    return out


def bare_requests(url: str, specs: list[dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """The same GETs the providers send on a first sync."""
    out = []
    for t in specs:
        if t["provider"] == "gitlab":
            path = "/api/v4/projects/" + t["repo"].replace("/", "%2F") + "/pipelines"
            params = {"ref": "main", "per_page": "5", "order_by": "updated_at", "sort": "desc"}
            out.append((url + path, params))
        elif t["provider"] == "github":
            out.append(
                (f"{url}/repos/{t['repo']}/actions/runs", {"branch": "main", "per_page": "5"})
            )
        else:
            out.append((f"{url}{job_path(t['repo'])}/job/main/api/json", {"tree": TREE}))
    return out


async def run_bare(
    requests: list[tuple[str, dict[str, str]]], concurrency: int, *, per_client: int
) -> float:
    """The same GETs with plain httpx: `concurrency` in flight over clients of
    `per_client` connections (per_client == concurrency: one client, httpx's default use)."""
    import base64

    basic = base64.b64encode(f"{ENV['JENKINS_USER']}:{ENV['JENKINS_TOKEN']}".encode()).decode()
    headers = {
        "PRIVATE-TOKEN": ENV["GITLAB_TOKEN"],
        "Authorization": f"Bearer {ENV['GITHUB_TOKEN']}",
    }
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        httpx.AsyncClient(limits=limits, timeout=8) for _ in range(concurrency // per_client)
    ]
    free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for slot in range(concurrency):
        free.put_nowait(clients[slot % len(clients)])

    async def one(url: str, params: dict[str, str]) -> None:
        client = await free.get()
        try:
            auth = {"Authorization": f"Basic {basic}"} if "/job/" in url else {}
            response = await client.get(url, params=params, headers={**headers, **auth})
            response.json()
        finally:
            free.put_nowait(client)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for url, params in requests:
            group.create_task(one(url, params))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    return elapsed


def request_counts(monitor: Monitor) -> dict[str, float]:
    counts: dict[str, float] = {}
    for metric in monitor.metrics.upstream_requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                code = sample.labels["code"]
                counts[code] = counts.get(code, 0) + sample.value
    return counts


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process so far (this one by default)."""
    stat = Path(f"/proc/{pid or 'self'}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, list[float]] = {"monitor": [], "fake": []}


async def run_monitor(
    url: str, count: int, concurrency: int, fake_pid: int
) -> tuple[float, float, dict[str, float], int, float]:
    env = {**ENV, "GITLAB_USER": "x"}
    settings = MonitorSettings.model_validate(
        {"targets": targets(url, count), "concurrency": concurrency, "timeout": 8}
    )
    monitor = Monitor(settings, env)
    try:
        own, fake = cpu_seconds(), cpu_seconds(fake_pid)
        first = await monitor.sync_once()
        CPU["monitor"].append(cpu_seconds() - own)
        CPU["fake"].append(cpu_seconds(fake_pid) - fake)
        rss, _ = rss_mb()
        before = request_counts(monitor)
        second = await monitor.sync_once()
        after = request_counts(monitor)
    finally:
        await monitor.stop()
    delta = {code: after.get(code, 0) - before.get(code, 0) for code in after}
    delta = {code: n for code, n in delta.items() if n}
    failures = len(first.failures) + len(second.failures)
    return first.duration_s, second.duration_s, delta, failures, rss


def sync_only(url: str, count: int, concurrency: int, spread_s: float) -> None:
    """One sync of `count` targets against a running fake, as `conveyor serve` would run it,
    in this process (the `--serve` case's out-of-process load). Prints its wall-clock start
    and end once it is over."""

    async def one() -> tuple[float, float]:
        settings = MonitorSettings.model_validate(
            {"targets": targets(url, count), "concurrency": concurrency, "timeout": 8}
        )
        monitor = Monitor(settings, {**ENV, "GITLAB_USER": "x"})
        try:
            started = time.time()
            report = await monitor.sync_once(spread_s=spread_s)
            assert not report.failures, f"{len(report.failures)} target fetches failed"
            return started, time.time()
        finally:
            await monitor.stop()

    started, ended = uvloop.run(one())
    print(f"{started} {ended}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--no-spread", action="store_true")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--sync-only", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--spread-s", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sync_only:
        sync_only(args.sync_only, args.targets, args.concurrency, args.spread_s)
        return
    if args.serve:
        from monitor_sync_serve import main as serve_main

        serve_main(args)
        return
    run = uvloop.run if args.loop == "uvloop" else asyncio.run
    fake, url = start_fake(args.delay)
    try:
        requests = bare_requests(url, targets(url, args.targets))
        bare, naive, first, second, rss = [], [], [], [], []
        for _ in range(args.rounds):
            if not args.skip_bare:
                bare.append(run(run_bare(requests, args.concurrency, per_client=8)))
                naive.append(run(run_bare(requests, args.concurrency, per_client=args.concurrency)))
            one, two, delta, failures, resident = run(
                run_monitor(url, args.targets, args.concurrency, fake.pid)
            )
            assert failures == 0, f"{failures} target fetches failed"
            rss.append(resident)
            first.append(one)
            second.append(two)
    finally:
        fake.terminate()
        fake.wait()
    floor = -(-args.targets // args.concurrency) * args.delay
    f, s = statistics.median(first), statistics.median(second)
    print(
        f"targets={args.targets} concurrency={args.concurrency} "
        f"upstream delay={args.delay * 1000:.0f} ms, loop={args.loop}"
    )
    print(f"theoretical floor (ceil(targets/concurrency) x delay): {floor:.2f} s")
    if bare:
        b, n = statistics.median(bare), statistics.median(naive)
        rounds = ", ".join(f"{x:.2f}" for x in bare)
        print(f"bare httpx, same GETs:       {b:.2f} s  (rounds: {rounds})")
        rounds = ", ".join(f"{x:.2f}" for x in naive)
        print(f"bare httpx, one client:      {n:.2f} s  (rounds: {rounds})")
    print(
        f"monitor first sync:          {f:.2f} s  (rounds: {', '.join(f'{x:.2f}' for x in first)})"
    )
    if bare:
        print(f"ratio monitor / bare:        {f / b:.2f}")
    print(f"ratio monitor / floor:       {f / floor:.2f}")
    per_fetch = {name: statistics.median(v) / args.targets * 1000 for name, v in CPU.items()}
    print(
        f"CPU per first sync: monitor {statistics.median(CPU['monitor']):.2f} s "
        f"({per_fetch['monitor']:.3f} ms per target), fake upstream "
        f"{statistics.median(CPU['fake']):.2f} s ({per_fetch['fake']:.3f} ms per request)"
    )
    print(
        f"memory: RSS after the first sync {max(rss):.0f} MB, peak {rss_mb()[1]:.0f} MB "
        "(this process: monitor, bare baselines, Python)"
    )
    print(f"monitor second sync:         {s:.2f} s")
    print(
        f"second sync requests by answer: {dict(sorted(delta.items()))} "
        f"(total {sum(delta.values()):.0f})"
    )


if __name__ == "__main__":
    main()
