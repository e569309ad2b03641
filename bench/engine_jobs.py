"""Figures 1 and 2 (issue 3): conveyor's cost per job.

1. 200 jobs of `true`, no needs, `--concurrency 2`, against `xargs -P2` running
   `bash -c true` 200 times. Goal: at most 10 ms of overhead per job.
2. 1,000 jobs chained by `needs` in a line, against `xargs -P1` running `bash -c true`
   1,000 times: the run overhead per job.

Overhead per job = (conveyor wall time - baseline wall time) / jobs, where conveyor's wall
time is the whole `conveyor run` (start-up, store, plan, logs, summary). The fixed start-up
is also measured (a 1-job pipeline) and shown separately.

    .venv/bin/python bench/engine_jobs.py [--jobs 200] [--chain 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-m", "conveyor", "run"]


def _pipeline(jobs: int, *, chained: bool) -> str:
    lines = ["name: bench", "jobs:"]
    for i in range(jobs):
        lines.append(f"  j{i}:")
        lines.append('    run: "true"')
        if chained and i:
            lines.append(f"    needs: [j{i - 1}]")
        elif not chained:
            lines.append("    needs: []")
    return "\n".join(lines) + "\n"


def _time_conveyor(project: Path, text: str, concurrency: int) -> float:
    (project / ".conveyor.yml").write_text(text)
    env = {**os.environ, "CONVEYOR_HOME": str(project / ".home")}
    started = time.perf_counter()
    subprocess.run(
        [*CONVEYOR, "--concurrency", str(concurrency)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def _time_xargs(jobs: int, parallel: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["xargs", f"-P{parallel}", "-n1", "bash", "-c", "true"],
        input="\n".join(["x"] * jobs) + "\n",
        text=True,
        check=True,
    )
    return time.perf_counter() - started


def _report(title: str, jobs: int, conveyor_s: float, baseline_s: float, startup_s: float) -> None:
    per_job_ms = (conveyor_s - baseline_s) / jobs * 1000
    net_ms = (conveyor_s - startup_s - baseline_s) / jobs * 1000
    print(title)
    print(f"  baseline (xargs + bash -c true): {baseline_s:.3f} s")
    print(
        f"  conveyor run:                    {conveyor_s:.3f} s  ({conveyor_s / baseline_s:.1f}x)"
    )
    print(f"  overhead per job:                {per_job_ms:.2f} ms (start-up included)")
    print(
        f"  overhead per job:                {net_ms:.2f} ms (without start-up: {startup_s:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--chain", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        startup_s = _time_conveyor(project, _pipeline(1, chained=False), 1)
        baseline_s = _time_xargs(args.jobs, 2)
        conveyor_s = _time_conveyor(project, _pipeline(args.jobs, chained=False), 2)
        _report(
            f"{args.jobs} independent jobs, concurrency 2",
            args.jobs,
            conveyor_s,
            baseline_s,
            startup_s,
        )
        baseline_s = _time_xargs(args.chain, 1)
        conveyor_s = _time_conveyor(project, _pipeline(args.chain, chained=True), 1)
        _report(
            f"{args.chain} jobs chained by needs", args.chain, conveyor_s, baseline_s, startup_s
        )


if __name__ == "__main__":
    main()
