"""Issue 3, figure 4: CLI start-up cost.

Times `conveyor --version` and `conveyor validate` of a 50-job file against `python -c pass`
(the interpreter's own start-up), interleaved in one run so machine noise hits all three alike.
Goal: each conveyor command at most 150 ms more than the baseline.

    .venv/bin/python bench/cli_startup.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-c", "from conveyor.cli import main; main()"]


def write_pipeline(directory: Path, jobs: int) -> Path:
    lines = ["name: startup", "stages: [build, test]", "jobs:"]
    for i in range(jobs):
        stage = "build" if i < jobs // 2 else "test"
        lines += [f"  job{i}:", f"    stage: {stage}", f"    run: echo {i}"]
    path = directory / ".conveyor.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def time_once(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        pipeline = write_pipeline(cwd, 50)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "conveyor --version": [*CONVEYOR, "--version"],
            "conveyor validate (50 jobs)": [*CONVEYOR, "validate", "-f", str(pipeline)],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the page cache once
            time_once(argv, cwd)
        for _ in range(args.rounds):
            for name, argv in commands.items():
                samples[name].append(time_once(argv, cwd))
    base = statistics.median(samples["python -c pass"])
    print("| command | median ms | over baseline ms | ratio |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median * 1000:.1f} | {(median - base) * 1000:+.1f} | "
            f"{median / base:.2f} |"
        )


if __name__ == "__main__":
    main()
