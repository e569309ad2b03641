"""A/B start-up of two source trees of conveyor: `conveyor --version` and `conveyor run` of a
one-job pipeline (`true`) in a git repository with one commit and its store already there;
with `--gitlab`, `conveyor run --concurrency 4` of `make bench-gitlab`'s six-job
`.gitlab-ci.yml` instead (isolated jobs: a pristine checkout, a copy per job).

Each tree is put first on PYTHONPATH (a copy of `src/`, e.g. `git archive REV src`);
each round times `python -c pass` and both trees' commands, alternating which tree goes
first, so machine noise and ordering hit both alike. Prints medians of wall time, each over
the baseline, and of CPU time (user + system of the command and its children: what a busy
machine disturbs least), and the ratios B/A. Each tree keeps its own CONVEYOR_HOME (their
store revisions may differ). Compile both trees first when PYTHONDONTWRITEBYTECODE is set
(`python -m compileall -q A B`), or both pay for compiling every module on every start.

    .venv/bin/python bench/cli_ab.py A_SRC B_SRC [--rounds 40] [--gitlab]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_startup import make_repo

CONVEYOR = [sys.executable, "-c", "from conveyor.cli import main; main()"]


def time_once(argv: list[str], cwd: Path, tree: str | None) -> tuple[float, float]:
    """Wall and CPU seconds of one command (`tree` first on PYTHONPATH, with its own home)."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
        env["CONVEYOR_HOME"] = str(cwd.parent / f"home-{abs(hash(tree))}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def make_gitlab_repo(directory: Path) -> Path:
    """A git repository with one commit of bench-gitlab's six jobs in three stages."""
    from gitlab_vs_gcl import six_jobs_three_stages

    directory.mkdir()
    (directory / ".gitlab-ci.yml").write_text(six_jobs_three_stages())
    git = ["git", "-C", str(directory), "-c", "user.email=b@localhost", "-c", "user.name=b"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], check=True, timeout=60)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("a", help="source tree A (the folder holding conveyor/)")
    parser.add_argument("b", help="source tree B")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--gitlab", action="store_true", help="run the six-job GitLab file")
    args = parser.parse_args()
    trees = {"A": args.a, "B": args.b}
    commands = {"--version": ["--version"], "run": ["run"]}
    if args.gitlab:
        commands["run"] = ["run", "--concurrency", "4"]
    samples: dict[str, list[tuple[float, float]]] = {"python -c pass": []}
    with tempfile.TemporaryDirectory() as tmp:
        make = make_gitlab_repo if args.gitlab else make_repo
        repo = make(Path(tmp) / "repo")
        for tree in trees.values():  # the store, the page cache
            time_once([*CONVEYOR, *commands["run"]], repo, tree)
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()
            samples["python -c pass"].append(time_once([sys.executable, "-c", "pass"], repo, None))
            for name, tree in order:
                for command, argv in commands.items():
                    key = f"{name}: conveyor {command}"
                    samples.setdefault(key, []).append(time_once([*CONVEYOR, *argv], repo, tree))
    wall = {name: statistics.median(w for w, _ in values) for name, values in samples.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in samples.items()}
    base = wall["python -c pass"]
    print("| command | median wall ms | over baseline ms | median CPU ms |")
    print("|---|---|---|---|")
    for name, value in wall.items():
        over = (value - base) * 1000
        print(f"| {name} | {value * 1000:.1f} | +{over:.1f} | {cpu[name] * 1000:.1f} |")
    for command in commands:
        a, b = f"A: conveyor {command}", f"B: conveyor {command}"
        print(f"B/A conveyor {command}: wall {wall[b] / wall[a]:.3f}, CPU {cpu[b] / cpu[a]:.3f}")


if __name__ == "__main__":
    main()
