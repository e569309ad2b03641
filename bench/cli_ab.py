"""A/B start-up of two source trees of conveyor: `conveyor --version` and `conveyor run` of a
one-job pipeline (`true`) in a git repository with one commit and its store already there.

Each tree is put first on PYTHONPATH (a copy of `src/`, e.g. one with some files from HEAD);
each round times `python -c pass` and both trees' commands, alternating which tree goes
first, so machine noise and ordering hit both alike. Prints medians, each over the baseline,
and the ratio B/A. Compile both trees first when PYTHONDONTWRITEBYTECODE is set
(`python -m compileall -q A B`), or both pay for compiling every module on every start.

    .venv/bin/python bench/cli_ab.py A_SRC B_SRC [--rounds 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_startup import make_repo

CONVEYOR = [sys.executable, "-c", "from conveyor.cli import main; main()"]


def time_once(argv: list[str], cwd: Path, tree: str | None) -> float:
    env = {**os.environ, "PYTHONPATH": tree} if tree else dict(os.environ)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", help="source tree A (the folder holding conveyor/)")
    parser.add_argument("b", help="source tree B")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    trees = {"A": args.a, "B": args.b}
    samples: dict[str, list[float]] = {"python -c pass": []}
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "repo")
        for tree in trees.values():  # the store, the page cache
            time_once([*CONVEYOR, "run"], repo, tree)
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()
            samples["python -c pass"].append(time_once([sys.executable, "-c", "pass"], repo, None))
            for name, tree in order:
                for command in ("--version", "run"):
                    key = f"{name}: conveyor {command}"
                    samples.setdefault(key, []).append(time_once([*CONVEYOR, command], repo, tree))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["python -c pass"]
    print("| command | median ms | over baseline ms |")
    print("|---|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value * 1000:.1f} | +{(value - base) * 1000:.1f} |")
    for command in ("--version", "run"):
        ratio = medians[f"B: conveyor {command}"] / medians[f"A: conveyor {command}"]
        print(f"B/A conveyor {command}: {ratio:.3f}")


if __name__ == "__main__":
    main()
