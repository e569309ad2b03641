"""Run tokens: what lets a worker read and write one run's files on the server.

A token is `<run_id>:<hex HMAC-SHA256 of the run id>` under the server's fleet key, so the
server checks it without storing anything, tells a token of another run from a forged one,
and the tokens it handed out survive its restart. The key is `<home>/fleet.key`: 32 random
bytes made once (mode 0600, published with a link so two processes starting at once agree
on one key). A token says nothing about time: the server refuses it once its run is final
(server.runfiles), so it expires with the run. Must not: know HTTP or the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from conveyor.errors import ConveyorError

__all__ = ["FLEET_KEY_BYTES", "load_fleet_key", "run_token", "token_run_id", "verify"]

FLEET_KEY_BYTES = 32
_CONTEXT = b"conveyor run token v1\0"
_SEPARATOR = ":"  # never in a run id (store.paths: letters, digits, `.`, `_`, `-`)


def load_fleet_key(home: Path) -> bytes:
    """The fleet key in `<home>/fleet.key`, made on first use (module docstring)."""
    path = home / "fleet.key"
    if not path.exists():
        _make_key(path)
    key = path.read_bytes()
    if len(key) != FLEET_KEY_BYTES:
        raise ConveyorError(
            f"{path}: not a fleet key ({len(key)} bytes, not {FLEET_KEY_BYTES}; delete it "
            "and restart the server: tokens of running jobs become invalid)"
        )
    return key


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(FLEET_KEY_BYTES))
        with contextlib.suppress(FileExistsError):  # another process made it first: keep it
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _mac(key: bytes, run_id: str) -> str:
    return hmac.new(key, _CONTEXT + run_id.encode("utf-8"), hashlib.sha256).hexdigest()


def run_token(key: bytes, run_id: str) -> str:
    """The token of run `run_id`."""
    return f"{run_id}{_SEPARATOR}{_mac(key, run_id)}"


def token_run_id(token: str) -> str | None:
    """The run a well-formed token names (not checked: see `verify`)."""
    run_id, separator, mac = token.rpartition(_SEPARATOR)
    return run_id if separator and run_id and mac else None


def verify(key: bytes, token: str) -> str | None:
    """The run id of `token` when it was made with `key` (compared in constant time),
    else None."""
    run_id = token_run_id(token)
    if run_id is None:
        return None
    given = token.rpartition(_SEPARATOR)[2].encode("ascii", "replace")
    return run_id if hmac.compare_digest(given, _mac(key, run_id).encode("ascii")) else None
