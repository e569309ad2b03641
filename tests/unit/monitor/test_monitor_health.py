"""monitor.health (the figures, pure) and monitor.history (what is kept, what is queued for
the store): worked examples and properties."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from conveyor.model import Status
from conveyor.monitor.health import NO_HEALTH, compute_health, pipeline_duration_s, seconds_since
from conveyor.monitor.history import History
from conveyor.monitor.validate import PipelineView
from conveyor.store.base import HistoryRecord

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = "g/app@main"


def record(
    n: int,
    status: Status = Status.SUCCESS,
    *,
    minutes: float = 10,
    key: str = KEY,
    provider: str = "gitlab",
) -> HistoryRecord:
    """Pipeline n: created at T0 + n hours, started a minute later, `minutes` long."""
    created = T0 + timedelta(hours=n)
    started = created + timedelta(minutes=1)
    return HistoryRecord(
        key=key,
        provider=provider,
        pipeline_id=n,
        status=status,
        sha="a" * 40,
        web_url=f"https://gl.example/p/-/pipelines/{n}",
        created_at=created,
        started_at=started,
        finished_at=started + timedelta(minutes=minutes) if status.is_final else None,
    )


def view(n: int, status: Status = Status.SUCCESS) -> PipelineView:
    r = record(n, status)
    return PipelineView(
        n, status, "main", r.sha, r.web_url, r.created_at, r.created_at, None,
        started_at=r.started_at, finished_at=r.finished_at,
    )  # fmt: skip


# ------------------------------------------------------------------ figures


def test_health_of_a_worked_history() -> None:
    # 1 ok, 2 red, 3 red, 4 ok (recovery: end of 2 -> end of 4), 5 canceled (ignored),
    # 6 red, 7 ok (recovery), 8 running (ignored), 9 red (still red: no recovery yet).
    history = [
        record(1, minutes=10),
        record(2, Status.FAILED, minutes=4),
        record(3, Status.FAILED, minutes=6),
        record(4, minutes=12),
        record(5, Status.CANCELED),
        record(6, Status.FAILED, minutes=2),
        record(7, minutes=8),
        record(8, Status.RUNNING),
        record(9, Status.FAILED, minutes=20),
    ]
    health = compute_health(reversed(history))
    assert (health.kept, health.finished, health.recoveries) == (9, 7, 2)
    assert health.success_ratio == 3 / 7
    assert health.median_duration_s == 8 * 60.0
    assert (health.durations, health.duration_sum_s) == (7, 62 * 60.0)
    end = {r.pipeline_id: r.finished_at for r in history}
    assert health.last_success_at == end[7]
    first = (end[4] - end[2]).total_seconds()  # type: ignore[operator]
    second = (end[7] - end[6]).total_seconds()  # type: ignore[operator]
    assert health.mttr_s == (first + second) / 2


def test_health_without_finished_pipelines_has_no_figures() -> None:
    assert compute_health([]) == NO_HEALTH
    running = compute_health([record(1, Status.RUNNING), record(2, Status.CANCELED)])
    assert (running.kept, running.finished, running.success_ratio, running.mttr_s) == (
        2,
        0,
        None,
        None,
    )


def test_health_all_green_has_no_recovery_and_all_red_no_last_success() -> None:
    green = compute_health([record(n) for n in range(1, 5)])
    assert (green.success_ratio, green.recoveries, green.mttr_s) == (1.0, 0, None)
    red = compute_health([record(n, Status.FAILED) for n in range(1, 5)])
    assert (red.success_ratio, red.last_success_at, red.mttr_s) == (0.0, None, None)


def test_duration_falls_back_to_creation_and_never_goes_negative() -> None:
    no_start = HistoryRecord(KEY, "gitlab", 1, Status.SUCCESS, None, "https://x.example/1",
                             T0, None, T0 + timedelta(seconds=30))  # fmt: skip
    skewed = HistoryRecord(KEY, "gitlab", 2, Status.FAILED, None, "https://x.example/2",
                           T0, T0 + timedelta(seconds=5), T0)  # fmt: skip
    assert (pipeline_duration_s(no_start), pipeline_duration_s(skewed)) == (30.0, 0.0)
    assert pipeline_duration_s(record(3, Status.RUNNING)) is None
    assert (seconds_since(None, T0), seconds_since(T0, T0 + timedelta(minutes=2))) == (None, 120)


_statuses = st.sampled_from(
    [Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.RUNNING, Status.SKIPPED]
)
_histories = st.lists(
    st.tuples(_statuses, st.integers(min_value=0, max_value=600)), min_size=0, max_size=40
).map(lambda items: [record(n + 1, s, minutes=m) for n, (s, m) in enumerate(items)])


@given(_histories, st.randoms())
def test_health_properties(history: list[HistoryRecord], rnd: object) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    health = compute_health(shuffled)
    assert health == compute_health(history)  # the order given does not matter
    settled = [r for r in history if r.status in (Status.SUCCESS, Status.FAILED)]
    assert (health.kept, health.finished) == (len(history), len(settled))
    if not settled:
        assert health.success_ratio is None and health.median_duration_s is None
        return
    assert health.success_ratio is not None and 0.0 <= health.success_ratio <= 1.0
    durations = [pipeline_duration_s(r) for r in settled]
    assert health.median_duration_s == statistics.median(d for d in durations if d is not None)
    # A recovery needs a failure before a success; there are at most as many as red streaks.
    streaks = sum(
        1
        for before, after in itertools.pairwise(settled)
        if before.status == Status.FAILED and after.status == Status.SUCCESS
    )
    assert health.recoveries == streaks
    assert (health.mttr_s is None) == (streaks == 0)
    assert health.mttr_s is None or health.mttr_s >= 0
    greens = [r for r in settled if r.status == Status.SUCCESS]
    assert health.last_success_at == (greens[-1].finished_at if greens else None)


# ------------------------------------------------------------------ history


def test_history_keeps_new_and_changed_pipelines_and_queues_only_them() -> None:
    history = History(keep=3)
    assert history.merge(KEY, "gitlab", [view(2, Status.RUNNING), view(1)]) is True
    assert [(r.pipeline_id, r.status) for r in history.take_pending()] == [
        (2, Status.RUNNING),
        (1, Status.SUCCESS),
    ]
    assert history.merge(KEY, "gitlab", [view(2, Status.RUNNING), view(1)]) is False
    assert history.take_pending() == []
    assert history.merge(KEY, "gitlab", [view(3), view(2, Status.FAILED), view(1)]) is True
    assert [(r.pipeline_id, r.status) for r in history.take_pending()] == [
        (3, Status.SUCCESS),
        (2, Status.FAILED),
    ]
    history.merge(KEY, "gitlab", [view(5), view(4)])
    assert [r.pipeline_id for r in history.records(KEY)] == [5, 4, 3]  # kept: the newest 3
    assert history.health(KEY).finished == 3
    assert history.health("other@main") == NO_HEALTH


def test_history_gives_back_a_failed_write_without_undoing_a_newer_change() -> None:
    history = History(keep=5)
    history.merge(KEY, "gitlab", [view(1, Status.RUNNING)])
    failed_write = history.take_pending()
    history.merge(KEY, "gitlab", [view(1, Status.FAILED)])
    history.give_back(failed_write)
    assert [r.status for r in history.take_pending()] == [Status.FAILED]


def test_history_without_a_store_queues_nothing_and_loads_only_watched_targets() -> None:
    unsaved = History(keep=5, is_saved=False)
    unsaved.merge(KEY, "gitlab", [view(1)])
    assert (unsaved.take_pending(), len(unsaved.records(KEY))) == ([], 1)
    loaded = History(keep=2)
    stored = [
        record(3),
        record(2, Status.FAILED),
        record(1),
        record(1, key="gone@main"),
        record(1, key="o/r@main", provider="gitlab"),  # now a github target
    ]
    assert loaded.load(stored, {KEY: "gitlab", "o/r@main": "github"}) == 3
    assert [r.pipeline_id for r in loaded.records(KEY)] == [3, 2]  # trimmed to keep
    assert (loaded.records("gone@main"), loaded.records("o/r@main")) == ((), ())
    assert loaded.take_pending() == []
