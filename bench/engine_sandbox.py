"""Figure (issue 15): engine overhead per job with the bubblewrap sandbox on, against off.

200 independent jobs of `true`, run by `conveyor run` with and without `--sandbox`, in the
same process of measurement: the two alternate (off, on, off, on, …) so machine load hits
both alike, and the median of each is kept. Extra per job = (median on - median off) / jobs,
at `--concurrency 1` (each job's full start-to-end cost is on the wall clock) and at
`--concurrency 2`. Goal: at most 5 ms extra per job. The CPU time of the run's processes
(user + system) is printed beside the wall time: a loaded machine disturbs it least.

The floor, measured in the same session: bubblewrap's own cost, a job's exact sandboxed argv
against its bare `bash -eo pipefail -c true`, each started and waited for by
`subprocess.run` with its output piped (`--floor N` pairs, alternating; medians). What the
engine adds on top of that is the difference between the two extras.

    .venv/bin/python bench/engine_sandbox.py [--jobs 200] [--rounds 5] [--floor 200]
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _time_run(project: Path, concurrency: int, *, sandbox: bool) -> tuple[float, float]:
    """Wall seconds of one whole run, and the CPU seconds of its processes (user + system
    of every process waited for: conveyor, bwrap's monitors, the jobs' shells)."""
    env = {**os.environ, "CONVEYOR_HOME": str(project / ".home")}
    args = [*CONVEYOR, "--concurrency", str(concurrency), *(["--sandbox"] if sandbox else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, cwd=project, env=env, stdout=subprocess.DEVNULL, check=True)
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall_s, cpu_s


def measure(jobs: int, rounds: int, concurrency: int) -> tuple[float, float, float, float]:
    """Median wall seconds of the whole run, sandbox off and on; then the median CPU
    seconds, off and on."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".conveyor.yml").write_text(_pipeline(jobs))
        _time_run(project, concurrency, sandbox=False)  # warm caches
        _time_run(project, concurrency, sandbox=True)
        off, on = [], []
        for _ in range(rounds):
            off.append(_time_run(project, concurrency, sandbox=False))
            on.append(_time_run(project, concurrency, sandbox=True))
    wall_off, cpu_off = (statistics.median(column) for column in zip(*off, strict=True))
    wall_on, cpu_on = (statistics.median(column) for column in zip(*on, strict=True))
    return wall_off, wall_on, cpu_off, cpu_on


def floor_ms(pairs: int) -> tuple[float, float]:
    """Median ms of a bare step and of the same step in the job sandbox (module docstring)."""
    from conveyor.engine.runner import StepSpec, step_command
    from conveyor.engine.sandbox import Sandbox

    with tempfile.TemporaryDirectory() as tmp:
        bare = StepSpec("true", {}, Path(tmp))
        boxed = StepSpec("true", {}, Path(tmp), sandbox=Sandbox("bwrap"), workspace=Path(tmp))
        argvs = (step_command(bare), step_command(boxed))
        times: tuple[list[float], list[float]] = ([], [])
        env = {"PATH": os.environ["PATH"]}
        for _ in range(pairs):
            for argv, found in zip(argvs, times, strict=True):
                started = time.perf_counter()
                subprocess.run(argv, cwd=tmp, env=env, capture_output=True, check=True)
                found.append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--floor", type=int, default=200, help="pairs for the floor; 0: skip")
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap is not installed (Debian package bubblewrap)")
    print(f"{args.jobs} jobs of `true`, median of {args.rounds} alternating rounds")
    for concurrency in (1, 2):
        off, on, cpu_off, cpu_on = measure(args.jobs, args.rounds, concurrency)
        extra_ms = (on - off) / args.jobs * 1000
        cpu_ms = (cpu_on - cpu_off) / args.jobs * 1000
        print(
            f"concurrency {concurrency}: off {off:.3f}s, on {on:.3f}s, ratio {on / off:.2f}, "
            f"extra {extra_ms:.2f} ms per job (goal <= 5 ms); CPU {cpu_off:.2f}s -> "
            f"{cpu_on:.2f}s, extra {cpu_ms:.2f} ms per job"
        )
    if args.floor:
        bare, boxed = floor_ms(args.floor)
        print(
            f"floor (bubblewrap alone, {args.floor} pairs): bash {bare:.2f} ms, "
            f"sandboxed {boxed:.2f} ms, extra {boxed - bare:.2f} ms per start"
        )


if __name__ == "__main__":
    main()
