"""`python bench/store_open.py`: the embedded store without SQLAlchemy at run time, against
the committed code (HEAD) that runs it through SQLAlchemy.

In one run, alternating the two variants N times each:
  * `conveyor run` of the 6-job, 3-stage `.gitlab-ci.yml` of bench/gitlab_vs_gcl.py in a git
    repository, on a store that exists already (each variant has its own CONVEYOR_HOME, made
    by one untimed run first);
  * `conveyor show <run id> --json` of a run of that store;
  * `python -c "import sqlalchemy"` against `python -c "pass"` (the cost the change removes).
"tree" is the working tree's src/, "HEAD" is `git archive HEAD src` extracted to a temporary
folder; both run with this interpreter, chosen by PYTHONPATH. Prints the median wall times
and the ratios HEAD / tree.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gitlab_vs_gcl import make_repo, six_jobs_three_stages

ROOT = Path(__file__).resolve().parents[1]
N = 15


def extract_head_src(into: Path) -> Path:
    """`git archive HEAD src | tar -x -C into`; the extracted src/ folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD", "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def environment(src: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    env.update(PYTHONPATH=str(src), CONVEYOR_HOME=str(home))
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one command that must succeed, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-400:]}")
    return wall, done.stdout


def conveyor(*args: str) -> list[str]:
    return [sys.executable, "-m", "conveyor", *args]


def check_variant(src: Path, env: dict[str, str]) -> None:
    """The variant really imports conveyor from `src` (PYTHONPATH before the install)."""
    probe = "import conveyor; print(conveyor.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not found.startswith(str(src)):
        raise SystemExit(f"variant {src}: imports conveyor from {found}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-store-") as tmp:
        base = Path(tmp)
        repo = make_repo(base / "repo", six_jobs_three_stages())
        variants = {"tree": ROOT / "src", "HEAD": extract_head_src(base / "head")}
        envs = {name: environment(src, base / f"home-{name}") for name, src in variants.items()}
        run_ids = {}
        for name, src in variants.items():
            check_variant(src, envs[name])
            _, out = timed(conveyor("run", "--json"), repo, envs[name])  # creates the store
            run_ids[name] = json.loads(out)["run_id"]
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(N):
            for name in variants:
                env = envs[name]
                runs = [
                    ("run", conveyor("run", "--concurrency", "4")),
                    ("show", conveyor("show", run_ids[name], "--json")),
                ]
                for what, argv in runs:
                    times.setdefault((what, name), []).append(timed(argv, repo, env)[0])
            for what, code in (("import sqlalchemy", "import sqlalchemy"), ("python", "pass")):
                wall = timed([sys.executable, "-c", code], repo, dict(os.environ))[0]
                times.setdefault((what, ""), []).append(wall)
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"N={N} each, alternating; median wall seconds")
    print(f"{'command':<34} {'tree':>8} {'HEAD':>8} {'HEAD/tree':>10}")
    for what, label in (
        ("run", "conveyor run (6 jobs, 3 stages)"),
        ("show", "conveyor show ID --json"),
    ):
        tree, head = median[(what, "tree")], median[(what, "HEAD")]
        print(f"{label:<34} {tree:8.3f} {head:8.3f} {head / tree:9.2f}x")
    imported, bare = median[("import sqlalchemy", "")], median[("python", "")]
    print(
        f"python -c 'import sqlalchemy' {imported:.3f} s, python -c pass {bare:.3f} s: "
        f"the import costs {imported - bare:.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
