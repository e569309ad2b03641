"""Issue 12: validate + plan the largest real `.gitlab-ci.yml` of tests/gitlab_real/ (by
bytes, its local includes counted), offline, for a push to the default branch.

Baseline, measured in the same run: a plain `yaml.load` (CSafeLoader) of the same files,
i.e. the cost of reading their YAML without marks, includes, validation or planning.
Goal: load + validate + plan under 0.3 s.

    .venv/bin/python bench/gitlab_real_plan.py [--repeat 5] [--project DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from conveyor.config import load_pipeline
from conveyor.model import Event, EventKind
from conveyor.plan import plan

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "gitlab_real"
GOAL_S = 0.3


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The plain loader, taught GitLab's `!reference` tag (as a list) so it can read them."""


_Loader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def largest_project() -> tuple[str, list[Path]]:
    """(folder, its files) of the corpus project with the most bytes."""
    entries = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))

    def files(entry: dict[str, object]) -> list[Path]:
        return [CORPUS / str(entry["dir"]) / str(f) for f in entry["files"]]  # type: ignore[attr-defined]

    entry = max(entries, key=lambda e: sum(p.stat().st_size for p in files(e)))
    return str(entry["dir"]), files(entry)


def best_of(repeat: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--project", help="a folder of tests/gitlab_real (default: largest)")
    args = parser.parse_args()
    name, files = largest_project()
    if args.project:
        name, files = args.project, sorted((CORPUS / args.project).rglob("*.yml"))
    main_file = CORPUS / name / ".gitlab-ci.yml"
    texts = [path.read_text(encoding="utf-8") for path in files]
    event = Event(EventKind.PUSH, ref="main", sha="a" * 40, default_branch="main")

    def load() -> object:
        return load_pipeline(main_file, event=event, fetch=None)

    def load_and_plan() -> object:
        return plan(load_pipeline(main_file, event=event, fetch=None), event)

    baseline = best_of(args.repeat, lambda: [list(yaml.load_all(t, Loader=_Loader)) for t in texts])
    load_s = best_of(args.repeat, load)
    total_s = best_of(args.repeat, load_and_plan)
    pipeline = load_pipeline(main_file, event=event, fetch=None)
    result = plan(pipeline, event)
    size_kib = sum(len(t.encode()) for t in texts) / 1024
    print(f"project: {name} ({len(files)} files, {size_kib:.0f} KiB), best of {args.repeat}")
    print(f"jobs: {len(pipeline.jobs)} parsed, {len(result.jobs)} planned for a push to main")
    print(f"baseline yaml.load (CSafeLoader):   {baseline * 1000:8.1f} ms")
    print(f"load + validate (load_pipeline):    {load_s * 1000:8.1f} ms")
    print(f"load + validate + plan:             {total_s * 1000:8.1f} ms")
    print(f"ratio to baseline:                  {total_s / baseline:8.1f}x")
    print(f"goal < {GOAL_S * 1000:.0f} ms: {'met' if total_s < GOAL_S else 'MISSED'}")


if __name__ == "__main__":
    main()
