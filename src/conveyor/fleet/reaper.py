"""The reaper of a worker's jobs: their process groups die with the worker, however it dies.

A job's steps run in their own process groups (engine.runner), so a worker killed with
`kill -9` would leave them running, orphaned, while the server retries the attempt on
another worker: the job's commands would run twice at once. `GroupReaper` is the
`store.base.ProcessBook` the worker's runner reports its groups to; it forwards each
change, one JSON line, to a small reaper process (`python -m conveyor.fleet.reaper`, in a
session of its own so a signal to the worker's group does not reach it). When the pipe
closes — the worker exited, whatever the signal — the reaper kills the groups still listed
(SIGTERM, a short grace, SIGKILL, with engine.recovery's PID-reuse guard) and exits. A
worker that stops cleanly has no group left by then, so nothing is killed. Must not: decide
anything about attempts (the server ends them `runner_interrupted`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import structlog

from conveyor.store.base import LiveProcess

__all__ = ["GroupReaper", "main"]

log = structlog.get_logger(__name__)

REAP_GRACE_S = 2.0


class GroupReaper:
    """A ProcessBook whose groups a reaper process kills if this process dies first."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.fleet.reaper"],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def add_process(self, proc: LiveProcess) -> None:
        self._send({"add": [proc.run_id, proc.job, proc.pgid, proc.started_ticks]})

    def remove_process(self, run_id: str, pgid: int) -> None:
        self._send({"remove": [run_id, pgid]})

    def close(self) -> None:
        """Stop the reaper (it kills what is still listed: nothing after a clean stop)."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)

    def _send(self, message: dict[str, list[object]]) -> None:
        stdin = self._process.stdin
        if stdin is None:
            return
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except OSError as exc:  # the reaper is gone: the worker goes on without it
            log.warning("worker.reaper_lost", error=type(exc).__name__)


def main() -> int:
    """The reaper process: track the groups from stdin; at its end, kill those left."""
    from conveyor.engine.recovery import kill_group

    live: dict[tuple[str, int], LiveProcess] = {}
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "add" in message:
            run_id, job, pgid, ticks = message["add"]
            live[(run_id, pgid)] = LiveProcess(run_id, job, int(pgid), int(ticks))
        elif "remove" in message:
            run_id, pgid = message["remove"]
            live.pop((run_id, int(pgid)), None)
    for proc in live.values():
        kill_group(proc, grace_s=REAP_GRACE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
