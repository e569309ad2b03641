"""store.locks across real processes: one server per home, and the lock dies with its
holder. (One server per PostgreSQL database: tests/integration/server/test_serve_postgres.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.store.locks import lock_database, lock_home

_HOLDER = """
import sys, time
from pathlib import Path
from conveyor.store.locks import lock_home
lock_home(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(30)
"""


@contextmanager
def _held_by_another_process(home: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_lock_home_held_by_another_process_is_refused(tmp_path: Path) -> None:
    with _held_by_another_process(tmp_path), pytest.raises(StoreError) as caught:
        lock_home(tmp_path)
    assert str(caught.value) == (
        f"serve: another conveyor server is using {tmp_path} "
        "(stop it, or give this one its own server.home / CONVEYOR_HOME)"
    )


def test_lock_home_is_free_again_once_its_holder_died(tmp_path: Path) -> None:
    with _held_by_another_process(tmp_path) as holder:
        holder.kill()
        holder.wait(timeout=10)
        checker = subprocess.run(
            [sys.executable, "-c", _HOLDER.replace("time.sleep(30)", ""), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert (checker.returncode, checker.stdout) == (0, "held\n")


def test_lock_database_of_a_sqlite_url_leaves_it_to_the_home_lock(tmp_path: Path) -> None:
    lock_database(f"sqlite:///{tmp_path / 'conveyor.db'}")  # nothing to hold, nothing raised
    assert list(tmp_path.iterdir()) == []
