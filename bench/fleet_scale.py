"""Fleet figure 2 (issue 10): spreading jobs over workers.

200 attempts of `sleep 0.5` sent at once through `fleet.executor.CeleryExecutor` to 2 real
worker processes x concurrency 4 (a real redis-server on loopback): the wall time against
the ideal, 200 x 0.5 s / 8 = 12.5 s. Goal: at most 1.2 x the ideal.

    .venv/bin/python bench/fleet_scale.py [--jobs 200] [--workers 2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from fleet_dispatch import fleet, spec, through_celery

SLEEP_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cvr-bench-scale-"))
    slots = args.workers * args.concurrency
    # 5 warm-up attempts of `true` first, then the measured ones
    specs = [spec(folder, n, "true") for n in range(5)]
    specs += [spec(folder, n, f"sleep {SLEEP_S}") for n in range(5, args.jobs + 5)]
    with fleet(args.workers, args.concurrency) as url:
        wall_s = asyncio.run(through_celery(url, specs, args.jobs))
    ideal_s = args.jobs * SLEEP_S / slots
    print(f"{args.jobs} jobs of `sleep {SLEEP_S}` on {args.workers} workers x {args.concurrency}")
    print(f"  ideal:     {ideal_s:.2f} s")
    print(f"  measured:  {wall_s:.2f} s  ({wall_s / ideal_s:.3f}x the ideal; goal <= 1.2x)")


if __name__ == "__main__":
    main()
