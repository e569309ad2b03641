"""A ScheduleState in memory (conveyor.runs.schedules)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["MemoryScheduleState"]


class MemoryScheduleState:
    def __init__(self, kept: dict[str, datetime] | None = None) -> None:
        self.kept = dict(kept or {})
        self.saves = 0

    def load(self) -> dict[str, datetime]:
        return dict(self.kept)

    def save(self, schedule_id: str, fired_at: datetime) -> None:
        self.kept[schedule_id] = fired_at
        self.saves += 1
