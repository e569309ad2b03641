"""Figure 3 (issue 3): one job printing 2,000,000 lines.

conveyor's lines per second (every line masked, numbered, written as a JSONL record and
printed as `[job] line`) against `cat` of the same output to /dev/null, and conveyor's peak
memory (resource.getrusage of children: conveyor is the largest child). Goals: at least
300,000 lines/s, peak RSS under 150 MB.

    .venv/bin/python bench/engine_output.py [--lines 2000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-m", "conveyor"]


def _make_output(path: Path, lines: int) -> None:
    with open(path, "w") as out:
        chunk = 10_000
        for start in range(0, lines, chunk):
            out.write(
                "".join(f"line {i} of the build output\n" for i in range(start, start + chunk))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        data = project / "output.txt"
        _make_output(data, args.lines)
        (project / ".conveyor.yml").write_text(f"jobs:\n  spew:\n    run: cat {data}\n")

        started = time.perf_counter()
        subprocess.run(f"cat {data} > /dev/null", shell=True, check=True)  # noqa: S602
        cat_s = time.perf_counter() - started

        env = {**os.environ, "CONVEYOR_HOME": str(project / ".home")}
        started = time.perf_counter()
        subprocess.run(
            [*CONVEYOR, "run"], cwd=project, env=env, stdout=subprocess.DEVNULL, check=True
        )
        conveyor_s = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        log_files = list((project / ".home" / "runs").glob("*/logs/*.jsonl"))
        logged = 0
        if log_files:
            with open(log_files[0], "rb") as log:
                logged = sum(1 for _ in log)

    print(f"lines: {args.lines:,} (logged {logged:,})")
    print(f"cat to /dev/null: {cat_s:.3f} s ({args.lines / cat_s:,.0f} lines/s)")
    print(f"conveyor run:     {conveyor_s:.3f} s ({args.lines / conveyor_s:,.0f} lines/s)")
    print(f"ratio conveyor/cat: {conveyor_s / cat_s:.1f}x")
    print(f"peak RSS of conveyor: {peak_mb:.1f} MB")


if __name__ == "__main__":
    main()
