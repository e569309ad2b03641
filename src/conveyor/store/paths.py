"""Where conveyor keeps local state: the home folder, run folders and run ids.

Owns the layout `<home>/conveyor.db` and `<home>/runs/<run_id>/`; `home` is `CONVEYOR_HOME`
or `<project>/.conveyor`. Must not open the database or write log files (sql.py and
logfiles.py do); `ensure_home` is the only function here that touches the disk.
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
    "ensure_home",
    "home_dir",
    "is_valid_run_id",
    "new_run_id",
    "run_dir",
]

DB_NAME = "conveyor.db"
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
    """Create `home` and its `.gitignore` (`*`) so local state never ends up in git."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        ignore = home / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
    except OSError as exc:
        raise StoreError(
            f"{home}: cannot create conveyor's home folder: {exc.strerror} "
            "(check permissions or set CONVEYOR_HOME)"
        ) from exc
