"""A `conveyor` command (serve, worker, …) as a real child process in a test: its JSON log
lines are collected as they come (a reader thread), events are waited for by name, and it is
stopped (SIGTERM, then SIGKILL after a grace; or SIGKILL at once) and its pipe closed.

    with conveyor_process(["serve", "-c", str(config), "--port", "0"], env, cwd) as server:
        port = server.wait_for_event("server.listening")["port"]

The one place tests start conveyor processes that log JSON; tests/integration/server/
conftest.py holds the in-process server (serve_app) for the tests that need no process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import orjson

__all__ = ["ConveyorProcess", "conveyor_process"]


class ConveyorProcess:
    """`python -m conveyor ARGS` in a child; its stdout and stderr lines are collected."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", *args],
            env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def events(self) -> list[dict[str, object]]:
        """Every line so far, parsed (a line that is no JSON object: `<not json>`)."""
        found: list[dict[str, object]] = []
        for line in list(self.lines):
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                found.append(event)
            else:
                found.append({"event": "<not json>", "line": line.decode(errors="replace")})
        return found

    def wait_for_event(self, name: str, count: int = 1, timeout_s: float = 30) -> dict[str, object]:
        """The `count`-th event named `name` (AssertionError with the output after
        `timeout_s`, or at once when the process ended without it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [event for event in self.events() if event.get("event") == name]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {count}x {name} event; output: {self.output()[-3000:]!r}")

    @property
    def base_url(self) -> str:
        """The loopback URL of a `serve` process (waits for it to listen)."""
        return f"http://127.0.0.1:{self.wait_for_event('server.listening')['port']}"

    def stop(self, *, kill: bool = False, grace_s: float = 20) -> bytes:
        """End the process (SIGTERM, then SIGKILL after `grace_s`; SIGKILL at once with
        `kill`), close its pipe, and return everything it wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.output()

    def output(self) -> bytes:
        """Everything written so far (all of it once the process has ended)."""
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)  # the reader has seen the end of the pipe
        return b"".join(self.lines)

    def text(self) -> str:
        return self.output().decode(errors="replace")


@contextmanager
def conveyor_process(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, *, kill: bool = False
) -> Iterator[ConveyorProcess]:
    """`ConveyorProcess` stopped at the end of the block (see `stop`)."""
    process = ConveyorProcess(args, env, cwd)
    try:
        yield process
    finally:
        process.stop(kill=kill)
