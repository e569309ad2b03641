"""The store's share of a webhook acknowledgement (issue 4, figure 1, diagnostic): per
delivery, `claim_delivery` + `create_run` (two SQLAlchemy transactions, as the intake did
before) against `create_delivered_run` (one transaction, statements built once), on the same
SQLite store in the same run, in-process, rounds alternating; plus the floor: the same two
INSERTs in one transaction with the plain `sqlite3` module.

    .venv/bin/python bench/server_intake_store.py [--deliveries 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from conveyor.model import EventKind, RunRecord, Status  # noqa: E402
from conveyor.store import open_store  # noqa: E402
from conveyor.store.base import RunStore  # noqa: E402
from conveyor.store.paths import new_run_id  # noqa: E402

TRIGGER = {"kind": "push", "ref": "refs/heads/main", "sha": "a" * 40, "before": "0" * 40,
           "variables": {}, "play": []}  # fmt: skip


def _run() -> RunRecord:
    return RunRecord(
        run_id=new_run_id(),
        repo="acme/app",
        ref="refs/heads/main",
        sha="a" * 40,
        event=EventKind.PUSH,
        status=Status.PENDING,
        created_at=datetime.now(UTC),
        trigger=TRIGGER,
    )


def _two_calls(store: RunStore, delivery: str) -> None:
    run = _run()
    assert store.claim_delivery(delivery, run.run_id) is None
    store.create_run(run)


def _one_call(store: RunStore, delivery: str) -> None:
    assert store.create_delivered_run(_run(), delivery) is None


def _raw_sqlite(path: Path) -> Callable[[str], None]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE d (id TEXT PRIMARY KEY, run TEXT NOT NULL)")
    db.execute("CREATE TABLE r (id TEXT PRIMARY KEY, number INTEGER UNIQUE, data TEXT)")

    def write(delivery: str) -> None:
        run_id = new_run_id()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO d VALUES (?, ?)", (delivery, run_id))
        db.execute("INSERT INTO r SELECT ?, coalesce(max(number), 0) + 1, ? FROM r", (run_id, "{}"))
        db.execute("COMMIT")

    return write


def _per_call_ms(write: Callable[[str], None], tag: str, count: int) -> float:
    for n in range(20):  # warm-up
        write(f"{tag}-warm-{n}")
    began = time.perf_counter()
    for n in range(count):
        write(f"{tag}-{n}")
    return (time.perf_counter() - began) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-bench-intake-"))
    store = open_store(tmp / "home")
    raw = _raw_sqlite(tmp / "raw.db")
    results: dict[str, list[float]] = {"two": [], "one": [], "raw": []}
    try:
        for r in range(args.rounds):
            results["two"].append(
                _per_call_ms(lambda d: _two_calls(store, d), f"two{r}", args.deliveries)
            )
            results["one"].append(
                _per_call_ms(lambda d: _one_call(store, d), f"one{r}", args.deliveries)
            )
            results["raw"].append(_per_call_ms(raw, f"raw{r}", args.deliveries))
    finally:
        store.close()
    two, one, floor = (statistics.median(results[k]) for k in ("two", "one", "raw"))
    print(f"{args.deliveries} deliveries x {args.rounds} rounds (median ms per delivery)")
    print(f"claim_delivery + create_run (2 transactions): {two:.3f} ms")
    print(f"create_delivered_run (1 transaction):         {one:.3f} ms  x{two / one:.1f} faster")
    print(f"floor: plain sqlite3, 2 INSERTs, 1 transaction: {floor:.3f} ms")


if __name__ == "__main__":
    main()
