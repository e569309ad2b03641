"""Figure 2 (issue 3): 1,000 jobs chained by `needs` in a line -> parse + validate + plan.

Baseline, measured in the same run: a plain `yaml.load` (CSafeLoader) of the same text,
i.e. the cost of reading the YAML without marks, validation or planning.
Goal: parse + validate + plan under 0.5 s.

    .venv/bin/python bench/plan_chain.py [--jobs 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import yaml

from conveyor.config.native import parse_native
from conveyor.model import Event, EventKind
from conveyor.plan import plan

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def chain_text(count: int) -> str:
    lines = ["name: chain", "jobs:", "  j0:", "    run: echo 0"]
    for index in range(1, count):
        lines += [f"  j{index}:", f"    needs: [j{index - 1}]", f"    run: echo {index}"]
    return "\n".join(lines) + "\n"


def best_of(repeat: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = chain_text(args.jobs)
    event = Event(EventKind.PUSH, ref="main", sha="a" * 40)

    baseline = best_of(args.repeat, lambda: yaml.load(text, Loader=_Loader))  # noqa: S506
    parse_s = best_of(args.repeat, lambda: parse_native(text, ".conveyor.yml"))
    pipeline = parse_native(text, ".conveyor.yml")
    plan_s = best_of(args.repeat, lambda: plan(pipeline, event))
    result = plan(pipeline, event)
    assert [job.name for job in result.jobs] == [f"j{i}" for i in range(args.jobs)]

    total = parse_s + plan_s
    print(f"jobs: {args.jobs} (chained by needs), best of {args.repeat}")
    print(f"baseline yaml.load (CSafeLoader): {baseline * 1000:8.1f} ms")
    print(f"parse + validate (parse_native):  {parse_s * 1000:8.1f} ms")
    print(f"plan:                             {plan_s * 1000:8.1f} ms")
    verdict = "met" if total < 0.5 else "MISSED"
    print(f"parse + validate + plan:          {total * 1000:8.1f} ms")
    print(f"ratio to baseline: {total / baseline:.2f}x; goal < 500 ms: {verdict}")


if __name__ == "__main__":
    main()
