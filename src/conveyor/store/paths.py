"""Where conveyor keeps local state: the home folder, run folders and run ids.

Owns the layout `<home>/conveyor.db` and `<home>/runs/<run_id>/`; `home` is `CONVEYOR_HOME`
or `<project>/.conveyor`, and the modes of what conveyor keeps there, in one place: the home
folder is `0700` (made so at every start, also when it existed), the folders conveyor
creates in it `0700` (`PRIVATE_DIR_MODE`) and its files `0600` (`private_opener`,
`make_private`): run records, logs and artifacts are for conveyor's user only. The process
umask is left alone: jobs create files in the project with the user's own.
Must not open the database or write log files (sql.py and logfiles.py do); `ensure_home`,
`make_private` and `private_opener` are the only functions here that touch the disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from conveyor.errors import StoreError

__all__ = [
    "DB_NAME",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "ensure_home",
    "home_dir",
    "is_valid_run_id",
    "make_private",
    "new_run_id",
    "private_opener",
    "run_dir",
]

DB_NAME = "conveyor.db"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Ids made elsewhere (tests, imports) are accepted when they are safe as one path segment.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def home_dir(project_dir: Path, env: Mapping[str, str]) -> Path:
    """`CONVEYOR_HOME` when set (relative paths are taken from `project_dir`), else
    `<project_dir>/.conveyor`."""
    override = env.get("CONVEYOR_HOME", "").strip()
    if override:
        return (project_dir / Path(override).expanduser()).resolve()
    return project_dir / ".conveyor"


def run_dir(home: Path, run_id: str) -> Path:
    """The folder of one run's logs and artifacts. Refuses ids that could escape `home`."""
    if not is_valid_run_id(run_id):
        raise StoreError(
            f"run id {run_id!r}: not a conveyor run id (list runs with `conveyor runs`)"
        )
    return home / "runs" / run_id


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, URL-safe, unique id: UTC time to the millisecond + 8 random characters,
    e.g. `20261123T125601123Z-k3j9x0aa`. Random bits keep two processes apart."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    # os.urandom, not `secrets`: its import (hmac, hashlib, random…) costs a short run ms.
    suffix = "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in os.urandom(8))
    return f"{stamp}-{suffix}"


def is_valid_run_id(run_id: str) -> bool:
    """True when `run_id` is one safe path segment (letters, digits, `.`, `_`, `-`)."""
    return _RUN_ID.match(run_id) is not None and ".." not in run_id


def ensure_home(home: Path) -> None:
    """Create `home` (`0700`, also when it existed) and its `.gitignore` (`*`) so local
    state never ends up in git."""
    try:
        home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        home.chmod(PRIVATE_DIR_MODE)
        ignore = home / ".gitignore"
        if not ignore.exists():
            with open(ignore, "w", encoding="utf-8", opener=private_opener) as handle:
                handle.write("*\n")
    except OSError as exc:
        raise StoreError(
            f"{home}: cannot create conveyor's home folder: {exc.strerror} "
            "(check permissions or set CONVEYOR_HOME)"
        ) from exc


def private_opener(path: str, flags: int) -> int:
    """`open(..., opener=private_opener)`: a file conveyor creates is `0600`."""
    return os.open(path, flags, PRIVATE_FILE_MODE)


def make_private(path: Path) -> None:
    """Make an existing file `0600` (one another library created, e.g. SQLite's database;
    SQLite gives its -wal and -shm files the database file's mode)."""
    try:
        path.chmod(PRIVATE_FILE_MODE)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot make it private: {exc.strerror}") from exc
