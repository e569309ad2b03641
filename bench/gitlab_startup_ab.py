"""A/B of `conveyor run` on bench/gitlab_vs_gcl.py's three pipelines: this tree against a
baseline, in one run, so that the ratio survives a machine whose load moves.

The baseline is `git archive REV src` (default: HEAD), or with `--only FILE...` this tree's
`src/` with only those files taken from REV (to measure one change while other work in the
tree is uncommitted; a listed file that REV lacks is left out of the baseline). Each
variant runs from its own `src/` through `PYTHONPATH`, in its own git repository and
`CONVEYOR_HOME` (one untimed run first, so both measure a run on an existing store). The
rounds alternate which variant goes first. Prints the median wall time of each and the
ratio baseline / tree (above 1: this tree is faster), then the median CPU time (user +
system, os.wait4: the conveyor process and the git and bash processes it waited for),
which moves much less than wall time with the machine's load, and the CPU saved per run
(baseline - tree). `--pipelines 0` runs only the first (6 jobs, 3 stages).

    .venv/bin/python bench/gitlab_startup_ab.py [--rev HEAD] [--only src/...] [--rounds 15]
        [--pipelines 0 1 2]
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
            shown = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{name}"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
            if shown.returncode == 0:
                (target / name).write_bytes(shown.stdout)
            else:  # a file this tree added: the baseline has none
                (target / name).unlink()
        return target / "src"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    return target / "src"


def time_run(repo: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the children it waited for)."""
    argv = [str(CONVEYOR), "run", "--concurrency", CONCURRENCY]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"conveyor run failed with exit code {proc.returncode} in {repo}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--only", nargs="*", default=[], metavar="FILE")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--pipelines", type=int, nargs="*", default=list(range(len(PIPELINES))))
    args = parser.parse_args()
    # Measured as installed, with bytecode cached: where writing .pyc files is switched off,
    # every run would compile the modules it imports (tens of ms), and unevenly so.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "baseline").mkdir()
        variants = {
            "tree": ROOT / "src",
            "baseline": baseline_src(tmp / "baseline", args.rev, args.only),
        }
        print(f"load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
        print(
            "| pipeline | this tree | baseline | baseline / tree "
            "| CPU tree | CPU baseline | CPU saved |"
        )
        print("|---|---|---|---|---|---|---|")
        for index, (title, build) in enumerate(PIPELINES.items()):
            if index not in args.pipelines:
                continue
            envs, repos = {}, {}
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
            for name, src in variants.items():
                repos[name] = make_repo(tmp / f"{index}-{name}", build())
                home = str(tmp / f"home-{index}-{name}")
                envs[name] = {**os.environ, "PYTHONPATH": str(src), "CONVEYOR_HOME": home}
                time_run(repos[name], envs[name])  # creates the store, untimed
            for n in range(args.rounds):
                for name in variants if n % 2 == 0 else reversed(list(variants)):
                    times[name].append(time_run(repos[name], envs[name]))
            tree, base = (statistics.median(w for w, _ in times[n]) for n in ("tree", "baseline"))
            cpu_tree, cpu_base = (
                statistics.median(c for _, c in times[n]) for n in ("tree", "baseline")
            )
            print(
                f"| {title} | {tree * 1000:.0f} ms | {base * 1000:.0f} ms | {base / tree:.2f}x "
                f"| {cpu_tree * 1000:.0f} ms | {cpu_base * 1000:.0f} ms "
                f"| {(cpu_base - cpu_tree) * 1000:+.0f} ms |"
            )
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
