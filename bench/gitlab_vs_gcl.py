"""`make bench-gitlab`: conveyor vs gitlab-ci-local on the same three `.gitlab-ci.yml`.

Pipelines (every job is `echo`, so the figures measure the tools, not the work):
  * six jobs in three stages (two per stage);
  * 50 independent jobs in one stage;
  * 50 jobs chained by `needs` (job i needs job i-1).
Each tool runs each pipeline from its command line in a fresh git repository, `--repeats`
times (default 5), the two tools one after the other in each round; then each runs it a
second time in the same repository (conveyor's store exists and needs no migration;
gitlab-ci-local's state folder exists): the second table. Reported: the median wall time,
the median peak RSS of the tool's process tree root (os.wait4's ru_maxrss), and the
speed-up as the median over the rounds of gitlab-ci-local / conveyor within one round, with
the lowest round (on a shared machine whose load moves, times taken seconds apart compare
better than medians taken a minute apart; the ratio of the medians is printed too). Both
tools run jobs with the same concurrency (4), gitlab-ci-local with --shell-isolation
(GitLab's clean folder per job, which conveyor always does for GitLab pipelines).
Needs `bench/gitlab_tools.py` to have installed gitlab-ci-local (make bench-gitlab does).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitlab_corpus.gcl import find_gcl, gcl_version

REPEATS = 5
CONCURRENCY = "4"
CONVEYOR = Path(sys.executable).parent / "conveyor"


def six_jobs_three_stages() -> str:
    jobs = [
        f"{stage}-{i}:\n  stage: {stage}\n  script: echo {stage} {i}\n"
        for stage in ("build", "test", "deploy")
        for i in (1, 2)
    ]
    return "stages: [build, test, deploy]\n" + "".join(jobs)


def fifty_independent() -> str:
    return "".join(f"job-{i:02}:\n  script: echo {i}\n" for i in range(50))


def fifty_chained() -> str:
    jobs = ["job-00:\n  script: echo 0\n  needs: []\n"]
    jobs += [f"job-{i:02}:\n  script: echo {i}\n  needs: [job-{i - 1:02}]\n" for i in range(1, 50)]
    return "".join(jobs)


PIPELINES = {
    "6 jobs, 3 stages": six_jobs_three_stages,
    "50 independent jobs": fifty_independent,
    "50 jobs chained by needs": fifty_chained,
}


def make_repo(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    (root / ".gitlab-ci.yml").write_text(text)
    git = ["git", "-C", str(root), "-c", "user.email=b@localhost", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, timeout=60)
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], check=True, timeout=60)
    return root


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one run; the command must succeed."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode} in {cwd}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    repeats = parser.parse_args().repeats
    # Measured as installed, with bytecode cached: where writing .pyc files is switched off,
    # every run would compile the modules it imports (tens of ms), and unevenly so.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    found = find_gcl()
    if found is None:
        print("gitlab-ci-local is not installed: run `make bench-gitlab`")
        return 2
    gcl, node_bin = found
    gcl_env = {**os.environ, "PATH": f"{node_bin}{os.pathsep}{os.environ['PATH']}"}
    conveyor_argv = [str(CONVEYOR), "run", "--concurrency", CONCURRENCY]
    gcl_argv = [str(gcl), "--shell-isolation", "--concurrency", CONCURRENCY, "--quiet"]
    rows, second_rows = [], []
    load_at_start = _load()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for title, build in PIPELINES.items():
            conveyor_runs, gcl_runs, conveyor_again, gcl_again = [], [], [], []
            for n in range(repeats):
                repo = make_repo(tmp / f"{len(rows)}-{n}", build())
                env = {**os.environ, "CONVEYOR_HOME": str(tmp / f"home-{len(rows)}-{n}")}
                conveyor_runs.append(measure(conveyor_argv, repo, env))
                conveyor_again.append(measure(conveyor_argv, repo, env))
                shutil.rmtree(repo / ".gitlab-ci-local", ignore_errors=True)
                gcl_runs.append(measure(gcl_argv, repo, gcl_env))
                gcl_again.append(measure(gcl_argv, repo, gcl_env))
            rows.append(_row(title, conveyor_runs, gcl_runs))
            second_rows.append(_row(title, conveyor_again, gcl_again))
    print(f"gitlab-ci-local {gcl_version()}, conveyor {CONVEYOR}, median of {repeats} runs")
    print(f"load average: {load_at_start} at the start, {_load()} at the end")
    _print_table(rows)
    print("\nsecond run in the same repository:")
    _print_table(second_rows)
    return 0


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


Row = tuple[str, float, float, float, float, float, float]


def _row(
    title: str, conveyor_runs: list[tuple[float, float]], gcl_runs: list[tuple[float, float]]
) -> Row:
    return (
        title,
        statistics.median(w for w, _ in conveyor_runs),
        statistics.median(w for w, _ in gcl_runs),
        statistics.median(g / c for (c, _), (g, _) in zip(conveyor_runs, gcl_runs, strict=True)),
        min(g / c for (c, _), (g, _) in zip(conveyor_runs, gcl_runs, strict=True)),
        statistics.median(m for _, m in conveyor_runs),
        statistics.median(m for _, m in gcl_runs),
    )


def _print_table(rows: list[Row]) -> None:
    print(
        "| pipeline | conveyor | gitlab-ci-local | speed-up (median of rounds) | lowest round "
        "| ratio of medians | conveyor RSS | gcl RSS | RSS ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for title, c_wall, g_wall, speed_up, lowest, c_rss, g_rss in rows:
        print(
            f"| {title} | {c_wall:.2f} s | {g_wall:.2f} s | {speed_up:.1f}x | {lowest:.1f}x "
            f"| {g_wall / c_wall:.1f}x | {c_rss:.0f} MiB | {g_rss:.0f} MiB | {g_rss / c_rss:.1f}x |"
        )


if __name__ == "__main__":
    sys.exit(main())
