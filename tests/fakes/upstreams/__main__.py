"""Run the fake upstreams as a process (benchmarks): prints its base URL, serves until killed.

python -m tests.fakes.upstreams [--delay 0.05] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import uvloop

from tests.fakes.upstreams.apis import FakeUpstream


async def _serve(delay_s: float, port: int, hang: bool) -> None:
    fake = FakeUpstream(delay_s=delay_s, auto_data=True)
    fake.record_requests = False
    if hang:
        fake.delay_s = 3600.0
    url = await fake.start(port)
    print(url, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="fake-upstreams")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hang", action="store_true", help="every request hangs")
    args = parser.parse_args()
    # uvloop (as conveyor serve runs): the fake shares the benchmark machine's cores with
    # the monitor it answers, so its own CPU per request is kept small.
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve(args.delay, args.port, args.hang))


main()
