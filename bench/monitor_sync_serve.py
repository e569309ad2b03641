"""The `--serve` case of bench/monitor_sync.py (issue 13): `conveyor serve` watching 10,000
targets, its first tick (all at once) and second tick (spread over the interval, or all at
once with `--no-spread`), its memory, and `GET /api/v1/pipelines/{key}` latency during each
tick and while idle between them, probed from this process at a fixed rate.

Tick boundaries come from the server's own `sync.tick_finished` events (end time and
duration); a probe request belongs to a tick when it was sent inside it. "Idle" is the window
from 5 s after the first tick ended (the history and snapshot writes that follow it, shown
on their own) to the second tick's start.

`--rounds N` repeats the whole (a fresh server each time) and prints the medians.

Baseline in the same run (`out_of_process_floor`): the same GET against a second, idle
`conveyor serve` while the same sync (10,000 targets against the same fake) runs in another
process, all at once and then spread. On a machine of two cores shared by the probe, the
fake upstream and the server, that sync's CPU alone raises the p99; the ratio of conveyor's
figure to this one is what the server itself adds. Not meant to be run on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import monitor_api
import uvloop
from monitor_api import start_serve
from monitor_sync import start_fake

from conveyor.outbound.base import ClientPolicy
from conveyor.outbound.http11 import Http11Client

__all__ = ["main"]

INTERVAL_S = 30


def write_config(root: Path, url: str, count: int, concurrency: int, spread: bool) -> Path:
    return monitor_api.write_config(
        root,
        url,
        count,
        INTERVAL_S,
        monitor=f"timeout = 8\nconcurrency = {concurrency}\n"
        f"spread = {'true' if spread else 'false'}\n",
        repo=lambda n: f"team{n % 7}/app{n}",
    )


class Ticks:
    """(start, end) wall-clock times of the finished ticks, from the server's JSON log, read
    on from where the last look stopped: the log grows by an access line per probe request,
    and reading it whole every look would stall the probe in this same process."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.found: list[tuple[float, float]] = []
        self.pauses_ms: list[float] = []  # settling the first tick's objects
        self.resumed = 0  # first ticks whose paused collector went over its budget

    def __call__(self) -> list[tuple[float, float]]:
        with self.log.open("rb") as file:
            file.seek(self.offset)
            chunk = file.read()
        complete = chunk.rfind(b"\n") + 1
        self.offset += complete
        for line in chunk[:complete].decode(errors="replace").splitlines():
            if '"monitor.first_tick_settled"' in line:
                self.pauses_ms.append(float(json.loads(line)["pause_ms"]))
            if '"monitor.collector_resumed"' in line:
                self.resumed += 1
            if '"sync.tick_finished"' in line:
                event = json.loads(line)
                end = _epoch(event["timestamp"])
                self.found.append((end - float(event["duration_s"]), end))
        return self.found


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


async def probe(url: str, rate: float, until: asyncio.Event) -> list[tuple[float, float]]:
    """GET `url` every 1/rate s (open loop: a slow answer does not delay the next one);
    (wall time sent, latency s) of each answer."""
    client = Http11Client(ClientPolicy(timeout_s=10, max_body_bytes=10**6, trust_env=False,
                                       slots=64))  # fmt: skip
    seen: list[tuple[float, float]] = []

    async def one() -> None:
        sent_wall, started = time.time(), time.perf_counter()
        reply = await client.request("GET", url)
        if reply.status_code == 200:
            seen.append((sent_wall, time.perf_counter() - started))

    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not until.is_set():
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    return seen


def p99_ms(samples: list[tuple[float, float]], start: float, end: float) -> tuple[float, int]:
    chosen = sorted(lat for at, lat in samples if start <= at <= end)
    if len(chosen) < 20:
        return float("nan"), len(chosen)
    return statistics.quantiles(chosen, n=100)[98] * 1000, len(chosen)


async def out_of_process_floor(
    args: argparse.Namespace, url: str, spread_s: float
) -> tuple[float, float, float]:
    """The machine's share: p99 of the same GET (200/s) against an idle `conveyor serve`
    (three targets) while the same sync runs in another process, all at once and then spread
    over `spread_s`. Returns (idle p99, p99 during each) in ms. Whatever the server adds on
    top of these is its own; below them no server on this machine can go."""
    root = Path(tempfile.mkdtemp(prefix="conveyor-bench-floor-"))
    config = write_config(root, url, 3, args.concurrency, True)
    child, port = start_serve(config, root / "home", root / "serve.log")
    stop = asyncio.Event()
    windows: list[tuple[float, float]] = []
    try:
        await asyncio.sleep(2)  # its own first tick of three targets
        prober = asyncio.create_task(
            probe(f"http://127.0.0.1:{port}/api/v1/pipelines/team0/app0@main", args.rate, stop)
        )
        await asyncio.sleep(3)  # the probe's connections opened
        idle_from = time.time()
        await asyncio.sleep(10)
        windows.append((idle_from, time.time()))
        for spread in (0.0, spread_s):
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).with_name("monitor_sync.py")),
                "--sync-only", url, "--targets", str(args.targets),
                "--concurrency", str(args.concurrency), "--spread-s", str(spread),
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await load.communicate()
            assert load.returncode == 0, "the out-of-process sync failed"
            begun, ended = (float(x) for x in out.splitlines()[-1].split())
            windows.append((begun, ended))
        stop.set()
        samples = await prober
    finally:
        child.terminate()
        child.wait()
        shutil.rmtree(root, ignore_errors=True)
    idle, at_once, spread = (p99_ms(samples, a, b)[0] for a, b in windows)
    return idle, at_once, spread


async def measure(args: argparse.Namespace) -> dict[str, float]:
    """One round: a fresh server's first two ticks, then the out-of-process floor. Prints
    the round's figures; returns its ratios."""
    fake, url = start_fake(args.delay)
    root = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    config = write_config(root, url, args.targets, args.concurrency, not args.no_spread)
    log = root / "serve.log"
    child, port = start_serve(config, root / "home", log)
    stop = asyncio.Event()
    try:
        prober = asyncio.create_task(
            probe(f"http://127.0.0.1:{port}/api/v1/pipelines/team0/app0@main", args.rate, stop)
        )
        rss_after_first = 0.0
        deadline = time.monotonic() + 300
        ticks = Ticks(log)
        while len(ticks()) < 2:
            assert time.monotonic() < deadline, "the server did not finish two ticks"
            if len(ticks.found) == 1 and not rss_after_first:
                rss_after_first = memory_mb(child.pid)[0]
            await asyncio.sleep(0.25)
        _, peak = memory_mb(child.pid)
        stop.set()
        samples = await prober
        found = ticks()[:2]
        child.terminate()
        child.wait()
        spread_s = 0.0 if args.no_spread else min(0.75 * INTERVAL_S, INTERVAL_S - 8)
        floor_idle, floor_once, floor_spread = await out_of_process_floor(args, url, spread_s)
    finally:
        if child.returncode is None:
            child.terminate()
            child.wait()
        fake.terminate()
        fake.wait()
        shutil.rmtree(root, ignore_errors=True)
    (first_start, first_end), (second_start, second_end) = found
    floor = -(-args.targets // args.concurrency) * args.delay
    first_s, second_s = first_end - first_start, second_end - second_start
    spread = "all at once" if args.no_spread else "spread"
    during_first, n1 = p99_ms(samples, first_start, first_end)
    idle, n0 = p99_ms(samples, first_end + 5, second_start)
    after_first, n3 = p99_ms(samples, first_end, first_end + 5)
    during_second, n2 = p99_ms(samples, second_start, second_end)
    print(
        f"conveyor serve, {args.targets} targets, concurrency {args.concurrency}, "
        f"upstream delay {args.delay * 1000:.0f} ms, interval {INTERVAL_S} s"
    )
    print(f"first tick (all at once): {first_s:.2f} s = x{first_s / floor:.2f} of the "
          f"{floor:.2f} s floor ({args.targets / first_s:.0f} upstream requests/s)")  # fmt: skip
    print(f"second tick ({spread}): {second_s:.2f} s "
          f"({args.targets / second_s:.0f} upstream requests/s)")  # fmt: skip
    print(f"server memory: VmRSS {rss_after_first:.0f} MB after the first tick, "
          f"peak (VmHWM) {peak:.0f} MB")  # fmt: skip
    print(f"GET p99 at {args.rate:.0f}/s: idle {idle:.2f} ms ({n0} requests), during the "
          f"first tick {during_first:.2f} ms (x{during_first / idle:.2f}, {n1}), during "
          f"the second tick ({spread}) {during_second:.2f} ms "
          f"(x{during_second / idle:.2f}, {n2})")  # fmt: skip
    pauses = ", ".join(f"{p:.0f}" for p in ticks.pauses_ms)
    print(f"the first tick's objects settled (frozen) in {pauses} ms; its paused collector "
          f"resumed early: {'yes' if ticks.resumed else 'no'}")  # fmt: skip
    print(f"GET p99 in the 5 s after the first tick (its 50,000 history records and the "
          f"snapshots written from threads): {after_first:.2f} ms "
          f"(x{after_first / idle:.2f}, {n3})")  # fmt: skip
    print(f"the same sync in another process, an idle server answering: GET p99 idle "
          f"{floor_idle:.2f} ms, during the sync all at once {floor_once:.2f} ms "
          f"(x{floor_once / floor_idle:.2f}), spread {floor_spread:.2f} ms "
          f"(x{floor_spread / floor_idle:.2f})")  # fmt: skip
    figures = {
        "first tick / floor": first_s / floor,
        "GET p99 first tick / idle": during_first / idle,
        "GET p99 second tick / idle": during_second / idle,
        "out of process, all at once / idle": floor_once / floor_idle,
        "out of process, spread / idle": floor_spread / floor_idle,
        "peak MB": peak,
    }
    figures["own share, first tick"] = (
        figures["GET p99 first tick / idle"] / figures["out of process, all at once / idle"]
    )
    figures["own share, second tick"] = (
        figures["GET p99 second tick / idle"] / figures["out of process, spread / idle"]
    )
    print(f"conveyor's own share (its ratio to idle over the out-of-process one): first tick "
          f"x{figures['own share, first tick']:.2f}, second tick "
          f"x{figures['own share, second tick']:.2f}", flush=True)  # fmt: skip
    return figures


def main(args: argparse.Namespace) -> None:
    rounds = [uvloop.run(measure(args)) for _ in range(args.rounds)]
    if len(rounds) > 1:
        print(f"medians over {len(rounds)} rounds:")
        for name in rounds[0]:
            values = [r[name] for r in rounds]
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"  {name}: {statistics.median(values):.2f} ({shown})")
