"""A real redis-server for the fleet's tests: one per test session, a fresh database per test.

The binary is Debian's `redis-server` (`make redis` installs it when missing; without it the
tests that ask for it skip and say why). The server listens on a free loopback port only
(`--bind 127.0.0.1`, protected mode on, so nothing outside this host reaches it) with its
files in a temporary folder, and keeps nothing on disk by default (`--save ''`, no append
file) — a test that restarts it asks for the append-only file (`appendonly=True`), which is
what a production broker that must keep its queues across a restart uses (docs/workers.md).

The server is a child of the test process, started when the first test asks for it and
stopped (SHUTDOWN NOSAVE, then SIGKILL) when the session ends; on Linux it gets SIGKILL if
the test process dies, even by SIGKILL. `RedisServer.restart()` stops it (the Redis-restart
fault) and starts it again on the same port. Each test gets its own database number
(`redis_url`), flushed before the test, so tests do not see each other's keys. Registered as
a plugin by tests/conftest.py. Must not reach into conveyor: tests get a URL.
"""

from __future__ import annotations

import ctypes
import itertools
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server", "redis_url", "start_redis"]

START_DEADLINE_S = 20.0
STOP_TIMEOUT_S = 10.0
DATABASES = 16  # Redis' default
PER_TEST = 12  # databases 0-11: one per test, reused round-robin (flushed first)
NO_SERVER = (
    "Redis tests NOT RUN: no redis-server on this machine (`make redis` installs Debian's "
    "package, or `apt-get install redis-server`)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class RedisServer:
    """A running redis-server on 127.0.0.1:`port` with its files in `base`."""

    def __init__(self, binary: str, base: Path, port: int, *, appendonly: bool = False) -> None:
        self.binary = binary
        self.base = base
        self.port = port
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.cycle(range(PER_TEST))
        self._reserved = itertools.count(PER_TEST)

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        argv = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.base),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--databases", str(DATABASES),
            "--logfile", str(self.base / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        preexec = _die_with_parent if sys.platform == "linux" else None
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec
        )
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start:\n{self._log_tail()}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer in {START_DEADLINE_S}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SHUTDOWN: the append file, when on, is written), then wait."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # redis-server: a clean SHUTDOWN
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, down_s: float = 0.0) -> None:
        """The Redis-restart fault: stop the server, stay down `down_s`, start it again on
        the same port (what it kept depends on `appendonly`)."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def fresh_database(self) -> int:
        database = next(self._databases)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(f"SELECT {database}\r\nFLUSHDB\r\n".encode())
            conn.recv(64)
        return database

    def reserved_database(self) -> int:
        """A database of its own for a longer-lived user (a module's worker), flushed."""
        database = next(self._reserved)
        if database >= DATABASES:
            raise RuntimeError("tests/redis.py: no reserved database left")
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(f"SELECT {database}\r\nFLUSHDB\r\n".encode())
            conn.recv(64)
        return database

    def _log_tail(self) -> str:
        log = self.base / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def start_redis(base: Path | None = None, *, appendonly: bool = False) -> RedisServer:
    """A started server in `base` (a new temporary folder when None); the caller stops it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(NO_SERVER)
    folder = base or Path(tempfile.mkdtemp(prefix="cvr-redis-"))
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(binary, folder, _free_port(), appendonly=appendonly)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's redis-server (started on first use, stopped at the end)."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of a database of the session's server, empty for this test."""
    return redis_server.url(redis_server.fresh_database())
