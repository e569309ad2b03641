"""A real PostgreSQL server for the store tests: one per test session, a fresh database per test.

The binaries come from the `pgserver` wheel (a dev extra that bundles PostgreSQL), else from a
system PostgreSQL (`postgres` on PATH, or Debian's /usr/lib/postgresql/N/bin). The server
listens on a unix socket in a short temporary directory and nowhere else
(`listen_addresses = ''`: no TCP at all), runs with fsync off (its data is thrown away) and in
the Asia/Kolkata time zone (+05:30), so every test proves the store's times do not depend on
the server's zone. PostgreSQL refuses to run as root: under root it runs as `nobody`.

The postmaster is a child of the test process, started when the first test asks for it and
stopped (fast shutdown, then waited for) when the session ends; it stays in the test
process's group, and on Linux it is sent SIGQUIT (immediate shutdown) if the test process
dies, even by SIGKILL, so no postgres process outlives the run. Registered as a plugin by
tests/conftest.py. Must not reach into conveyor: tests get a database URL (`postgres_url`) or
a store opened on it (`postgres_store`).
"""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from conveyor.store import open_store_url

if TYPE_CHECKING:  # the store's modules load only when a test opens a store
    from conveyor.store.sql import SqlRunStore

__all__ = [
    "PostgresServer",
    "find_postgres_bin",
    "postgres_server",
    "postgres_store",
    "postgres_url",
    "start_postgres",
]

START_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 30.0
SERVER_SETTINGS = {
    "listen_addresses": "",  # unix socket only
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    # Containers often mount a tiny /dev/shm; files in the data directory always fit.
    "dynamic_shared_memory_type": "mmap",
    "timezone": "Asia/Kolkata",
}
NO_SERVER = (
    "PostgreSQL tests NOT RUN: no PostgreSQL binaries on this machine (the pgserver wheel "
    "has no build for this platform and there is no initdb/postgres on PATH or in "
    "/usr/lib/postgresql/*/bin; install one, e.g. `apt-get install postgresql`)"
)


def find_postgres_bin() -> Path | None:
    """The first directory holding both `initdb` and `postgres`: pgserver's, then the system's."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("pgserver")  # located, not imported: its import has effects
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    on_path = shutil.which("postgres") or shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates.extend(sorted(debian, key=lambda p: int(p.parent.name), reverse=True))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _account_options(base: Path) -> dict[str, Any]:
    """subprocess options that drop root to `nobody`, who then owns `base`; {} for others."""
    if os.geteuid() != 0:
        return {}
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError as exc:
        raise RuntimeError(
            "tests/postgres.py: running as root and there is no `nobody` account to run "
            "PostgreSQL as (it refuses root; run the tests as a normal user)"
        ) from exc
    os.chown(base, nobody.pw_uid, nobody.pw_gid)
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _enterable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def _mirror_install(bin_dir: Path, target: Path) -> Path:
    """A copy of the installation inside `target`, for `nobody`: the original may sit below a
    directory only root can enter (a CI clone in `mktemp -d`, mode 0700). pgserver's binaries
    find their shared libraries at `$ORIGIN/../../../pgserver.libs` (the wheel's RPATH), so
    the copy keeps that layout: target/pgserver/pginstall/{bin,lib,share} and
    target/pgserver.libs. Hard links where the file system allows, copies elsewhere."""

    def link_or_copy(source: str, destination: str) -> None:
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)

    install = bin_dir.parent
    copied = target / "pgserver" / "pginstall"
    for part in ("bin", "lib", "share"):
        if (install / part).is_dir():
            shutil.copytree(
                install / part, copied / part, symlinks=True, copy_function=link_or_copy
            )
    libs = install.parent.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / "pgserver.libs", copy_function=link_or_copy)
    for directory, _, _ in os.walk(target):
        Path(directory).chmod(0o755)  # read-only binaries: they must be enterable
    return copied / "bin"


class PostgresServer:
    """A running postmaster: hands out fresh databases, stops on `stop()`."""

    def __init__(self, base: Path, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.process = process
        self._names = itertools.count(1)
        self._admin = psycopg.connect(
            host=str(base), user="postgres", dbname="postgres", autocommit=True, connect_timeout=10
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (psycopg 3 over the unix socket)."""
        url = sa.URL.create(
            "postgresql+psycopg",
            username="postgres",
            database=database,
            query={"host": str(self.base)},
        )
        return url.render_as_string(hide_password=False)

    def create_database(self) -> str:
        name = f"conveyor_test_{next(self._names)}"
        self._admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_size(self) -> int:
        """Where the server log ends now: pass it to `log_since` after the work to inspect."""
        return (self.base / "postgres.log").stat().st_size

    def log_since(self, offset: int) -> str:
        """The server log written after `offset`. A backend writes an error to the log
        before it answers the client, so the log already holds every error of a finished
        call."""
        with open(self.base / "postgres.log", "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def drop_database(self, name: str) -> None:
        # FORCE: a test that failed half-way may have left a connection open.
        self._admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; waits each time."""
        self._admin.close()
        for stop_signal in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            self.process.send_signal(stop_signal)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(self.base, ignore_errors=True)


def _die_with_parent() -> None:
    """In the forked child (after the switch to `nobody`, which would clear it): SIGQUIT,
    PostgreSQL's immediate shutdown, when the test process dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGQUIT)


def _log_tail(base: Path) -> str:
    log = base / "postgres.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def _wait_until_ready(base: Path, process: subprocess.Popen[bytes]) -> None:
    """Poll postmaster.pid until its status line says `ready` (what `pg_ctl -w` waits for)."""
    pid_file = base / "data" / "postmaster.pid"
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited with {process.returncode}:\n{_log_tail(base)}")
        lines = pid_file.read_text().splitlines() if pid_file.exists() else []
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        time.sleep(0.02)
    raise RuntimeError(f"postgres not ready after {START_DEADLINE_S} s:\n{_log_tail(base)}")


def start_postgres(bin_dir: Path) -> PostgresServer:
    """initdb a cluster in a new temporary directory and start a postmaster on it; the
    directory is removed again if anything fails."""
    # A unix socket path must stay under ~100 bytes: prefer a short temporary directory.
    parent = tempfile.gettempdir() if len(tempfile.gettempdir()) < 60 else "/tmp"  # noqa: S108
    base = Path(tempfile.mkdtemp(prefix="cvpg-", dir=parent))
    try:
        return _start_in(base, bin_dir)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _start_in(base: Path, bin_dir: Path) -> PostgresServer:
    account = _account_options(base)
    if account and not _enterable_by_others(bin_dir):
        bin_dir = _mirror_install(bin_dir, base / "install")
    initdb = [
        *(str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres"),
        *("--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
    ]
    done = subprocess.run(
        initdb, cwd=base, capture_output=True, text=True, timeout=120, check=False, **account
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stderr[-2000:]}")
    settings = [f"-c{key}={value}" for key, value in SERVER_SETTINGS.items()]
    with open(base / "postgres.log", "wb") as log:
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(base / "data"), "-k", str(base), *settings],
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            **account,
        )
    try:
        _wait_until_ready(base, process)
        return PostgresServer(base, process)
    except BaseException:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        raise


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip(NO_SERVER)
    server = start_postgres(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[SqlRunStore]:
    """A run store opened (and so migrated) on a new database."""
    store = open_store_url(postgres_url)
    yield store
    store.close()
