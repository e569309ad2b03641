"""A/B of `conveyor run` on bench/gitlab_vs_gcl.py's three pipelines: this tree against a
baseline, in one run, so that the ratio survives a machine whose load moves.

The baseline is `git archive REV src` (default: HEAD), or with `--only FILE...` this tree's
`src/` with only those files taken from REV (to measure one change while other work in the
tree is uncommitted). Each variant runs from its own `src/` through `PYTHONPATH`, in its
own git repository and `CONVEYOR_HOME` (one untimed run first, so both measure a run on an
existing store). The rounds alternate which variant goes first. Prints the median wall
time of each and the ratio baseline / tree (above 1: this tree is faster).

    .venv/bin/python bench/gitlab_startup_ab.py [--rev HEAD] [--only src/...] [--rounds 15]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gitlab_vs_gcl import CONCURRENCY, CONVEYOR, PIPELINES, make_repo

ROOT = Path(__file__).resolve().parents[1]


def baseline_src(target: Path, rev: str, only: list[str]) -> Path:
    """A `src/` folder in `target` for the baseline (see the module docstring)."""
    if only:
        shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__"))
        for name in only:
            text = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{name}"],
                capture_output=True, check=True, timeout=60,
            ).stdout  # fmt: skip
            (target / name).write_bytes(text)
        return target / "src"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    return target / "src"


def time_run(repo: Path, env: dict[str, str]) -> float:
    argv = [str(CONVEYOR), "run", "--concurrency", CONCURRENCY]
    started = time.perf_counter()
    subprocess.run(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, check=True, timeout=120)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--only", nargs="*", default=[], metavar="FILE")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "baseline").mkdir()
        variants = {
            "tree": ROOT / "src",
            "baseline": baseline_src(tmp / "baseline", args.rev, args.only),
        }
        print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
        print("| pipeline | this tree | baseline | baseline / tree |")
        print("|---|---|---|---|")
        for index, (title, build) in enumerate(PIPELINES.items()):
            envs, repos, times = {}, {}, {name: [] for name in variants}
            for name, src in variants.items():
                repos[name] = make_repo(tmp / f"{index}-{name}", build())
                home = str(tmp / f"home-{index}-{name}")
                envs[name] = {**os.environ, "PYTHONPATH": str(src), "CONVEYOR_HOME": home}
                time_run(repos[name], envs[name])  # creates the store, untimed
            for n in range(args.rounds):
                for name in variants if n % 2 == 0 else reversed(list(variants)):
                    times[name].append(time_run(repos[name], envs[name]))
            tree, base = statistics.median(times["tree"]), statistics.median(times["baseline"])
            print(f"| {title} | {tree * 1000:.0f} ms | {base * 1000:.0f} ms | {base / tree:.2f}x |")
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
