"""A LogSink that keeps records in a list: the fake of store.logfiles.RunLogs."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.model import LogRecord

__all__ = ["ListLogs"]


class ListLogs:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.closed = False

    def write(self, record: LogRecord) -> None:
        self.records.append(record)

    def write_many(self, records: Sequence[LogRecord]) -> None:
        self.records.extend(records)

    def close(self) -> None:
        self.closed = True

    def texts(self, job: str) -> list[str]:
        return [r.text for r in self.records if r.job == job]

    def text(self, job: str) -> str:
        return "\n".join(self.texts(job))
