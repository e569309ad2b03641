"""The monitor's first tick against an upstream that refuses every connection, with and
without `monitor.collector` (what `conveyor serve` hands its Monitor): the process's RSS
after the tick and its peak, and how the collector's pause ended. Each failed fetch leaves
about 150 objects of cyclic garbage, so a pause without its guards (64 failed fetches, a
budget of new objects) would hold all of them until the tick ends.

Each case runs in a fresh process (`--case`), so their memory figures do not mix; the
baseline is the same tick without the collector, measured in the same run.

    .venv/bin/python bench/monitor_refused.py [--targets 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_case(count: int, with_collector: bool) -> None:
    import structlog
    import uvloop
    from monitor_sync import ENV, targets

    from conveyor.monitor.collector import Collector
    from conveyor.monitor.service import Monitor
    from conveyor.settings.monitor import MonitorSettings

    events: list[dict[str, object]] = []

    def keep(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
        if str(event.get("event", "")).startswith("monitor.") or event.get("event") == (
            "sync.tick_finished"
        ):
            events.append(dict(event))
        raise structlog.DropEvent

    structlog.configure(processors=[keep])

    async def first_tick() -> None:
        url = f"http://127.0.0.1:{closed_port()}"
        settings = MonitorSettings.model_validate(
            {"targets": targets(url, count), "concurrency": 64, "timeout": 8, "interval": 600}
        )
        monitor = Monitor(
            settings,
            {**ENV, "GITLAB_USER": "x"},
            retry_wait_s=0.001,
            collector=Collector() if with_collector else None,
        )
        before, _ = memory_mb()
        await monitor.start()
        while monitor.last_report is None or (
            with_collector and not any(e["event"] == "monitor.first_tick_settled" for e in events)
        ):
            await asyncio.sleep(0.05)
        after, peak = memory_mb()
        failed = len(monitor.last_report.failures)
        await monitor.stop()
        ended = next((e for e in events if e["event"] == "monitor.collector_resumed"), None)
        settled = next((e for e in events if e["event"] == "monitor.first_tick_settled"), None)
        name = "with the collector" if with_collector else "without (baseline)"
        print(
            f"{name:20} {failed} failed fetches; RSS {before:.0f} MB before, {after:.0f} MB "
            f"after the first tick, peak {peak:.0f} MB"
            + (f"; pause ended after {ended['failed_fetches']} failures" if ended else "")
            + (f"; settled in {settled['pause_ms']} ms" if settled else ""),
            flush=True,
        )

    uvloop.run(first_tick())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--case", choices=("with", "without"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.targets, args.case == "with")
        return
    print(f"first tick of {args.targets} targets whose upstream refuses every connection")
    for case in ("without", "with"):
        subprocess.run(
            [sys.executable, __file__, "--targets", str(args.targets), "--case", case],
            check=True,
        )


if __name__ == "__main__":
    main()
