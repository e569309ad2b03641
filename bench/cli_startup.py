"""Issue 3, figure 4: CLI start-up cost.

Times `conveyor --version` and `conveyor validate` of a 50-job file against `python -c pass`
(the interpreter's own start-up), interleaved in one run so machine noise hits them all alike.
Goal: each of those two at most 150 ms more than the baseline.
Also timed, for the start-up of a real run: `conveyor run` of a one-job pipeline (`true`) in a
git repository with one commit, once with a new store each time (`.conveyor/` removed before,
outside the timing: schema created) and once with the store already there.

    .venv/bin/python bench/cli_startup.py [--rounds 30]
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

CONVEYOR = [sys.executable, "-c", "from conveyor.cli import main; main()"]


def write_pipeline(directory: Path, jobs: int) -> Path:
    lines = ["name: startup", "stages: [build, test]", "jobs:"]
    for i in range(jobs):
        stage = "build" if i < jobs // 2 else "test"
        lines += [f"  job{i}:", f"    stage: {stage}", f"    run: echo {i}"]
    path = directory / ".conveyor.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_repo(directory: Path) -> Path:
    """A git repository with one commit of a one-job pipeline."""
    directory.mkdir()
    (directory / ".conveyor.yml").write_text("jobs:\n  one:\n    run: 'true'\n")
    git = ["git", "-C", str(directory), "-c", "user.email=b@localhost", "-c", "user.name=b"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], check=True, timeout=60)
    return directory


def time_once(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    # Measured as installed, with bytecode cached: where writing .pyc files is switched off,
    # every run would compile the modules it imports (tens of ms), and unevenly so.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        pipeline = write_pipeline(cwd, 50)
        repo = make_repo(cwd / "repo")
        run = [*CONVEYOR, "run"]
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], cwd),
            "conveyor --version": ([*CONVEYOR, "--version"], cwd),
            "conveyor validate (50 jobs)": ([*CONVEYOR, "validate", "-f", str(pipeline)], cwd),
            "conveyor run (1 job, new store)": (run, repo),
            "conveyor run (1 job, existing store)": (run, repo),
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for argv, where in commands.values():  # warm the page cache once
            time_once(argv, where)
        for _ in range(args.rounds):
            for name, (argv, where) in commands.items():
                if "new store" in name:
                    shutil.rmtree(repo / ".conveyor")
                samples[name].append(time_once(argv, where))
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
