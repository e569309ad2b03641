"""Figure (issue 15): engine overhead per job with the bubblewrap sandbox on, against off.

200 independent jobs of `true`, run by `conveyor run` with and without `--sandbox`, in the
same process of measurement: the two alternate (off, on, off, on, …) so machine load hits
both alike, and the median of each is kept. Extra per job = (median on - median off) / jobs,
at `--concurrency 1` (each job's full start-to-end cost is on the wall clock) and at
`--concurrency 2`. Goal: at most 5 ms extra per job.

    .venv/bin/python bench/engine_sandbox.py [--jobs 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-m", "conveyor", "run"]


def _pipeline(jobs: int) -> str:
    lines = ["name: bench", "jobs:"]
    for i in range(jobs):
        lines += [f"  j{i}:", '    run: "true"', "    needs: []"]
    return "\n".join(lines) + "\n"


def _time_run(project: Path, concurrency: int, *, sandbox: bool) -> float:
    env = {**os.environ, "CONVEYOR_HOME": str(project / ".home")}
    args = [*CONVEYOR, "--concurrency", str(concurrency), *(["--sandbox"] if sandbox else [])]
    started = time.perf_counter()
    subprocess.run(args, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(jobs: int, rounds: int, concurrency: int) -> tuple[float, float]:
    """Median wall seconds of the whole run, sandbox off and on."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".conveyor.yml").write_text(_pipeline(jobs))
        _time_run(project, concurrency, sandbox=False)  # warm caches
        _time_run(project, concurrency, sandbox=True)
        off, on = [], []
        for _ in range(rounds):
            off.append(_time_run(project, concurrency, sandbox=False))
            on.append(_time_run(project, concurrency, sandbox=True))
    return statistics.median(off), statistics.median(on)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap is not installed (Debian package bubblewrap)")
    print(f"{args.jobs} jobs of `true`, median of {args.rounds} alternating rounds")
    for concurrency in (1, 2):
        off, on = measure(args.jobs, args.rounds, concurrency)
        extra_ms = (on - off) / args.jobs * 1000
        print(
            f"concurrency {concurrency}: off {off:.3f}s, on {on:.3f}s, ratio {on / off:.2f}, "
            f"extra {extra_ms:.2f} ms per job (goal <= 5 ms)"
        )


if __name__ == "__main__":
    main()
