"""The monitor's pipeline history and health figures over a real fake upstream and a real
SQLite store: the figures in the entry and in /metrics, the history route and its paging,
writes only for new or changed pipelines, retention, and a restart that loses nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.fakes.memory_store import MemoryRunStore
from tests.fakes.upstreams import FakeUpstream, Fault
from tests.fakes.upstreams.apis import github_run
from tests.fakes.upstreams.scenario import ENV, open_api_client, targets_for

from conveyor.monitor.service import Monitor
from conveyor.settings.monitor import MonitorSettings
from conveyor.store import open_store
from conveyor.store.base import HistoryRecord, MonitorSnapshot

KEY = "octo/api@main"


class CountingStore(MemoryRunStore):
    """The memory store, remembering each history write (a batch of records)."""

    def __init__(self) -> None:
        super().__init__()
        self.history_writes: list[list[int]] = []
        self.snapshot_writes: list[list[str]] = []

    def save_history(self, records: Sequence[HistoryRecord], *, keep: int) -> None:
        self.history_writes.append(sorted(r.pipeline_id for r in records))
        super().save_history(records, keep=keep)

    def save_snapshots(self, snapshots: Sequence[MonitorSnapshot]) -> None:
        self.snapshot_writes.append(sorted(s.key for s in snapshots))
        super().save_snapshots(snapshots)


def _monitor(fake: FakeUpstream, store: object, **settings: object) -> Monitor:
    merged: dict[str, object] = {"targets": targets_for(fake.url), "timeout": 2.0, **settings}
    return Monitor(MonitorSettings.model_validate(merged), ENV, store, retry_wait_s=0.01)  # type: ignore[arg-type]


def _recover(fake: FakeUpstream) -> None:
    """Run 3 (running at first) failed; run 4 succeeded: 1 ok, 2 red, 3 red, 4 ok."""
    fake.github["octo/api"] = [
        github_run(4),
        github_run(3, conclusion="failure"),
        github_run(2, conclusion="failure"),
        github_run(1),
    ]


async def test_health_figures_in_the_entry_the_history_route_and_metrics(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "home")
    monitor = _monitor(fake, store)
    try:
        await monitor.sync_once()
        _recover(fake)
        await monitor.sync_once()
        async with open_api_client(monitor) as client:
            entry = (await client.get(f"/api/v1/pipelines/{KEY}")).json()
            first = (await client.get(f"/api/v1/pipelines/{KEY}/history?limit=3")).json()
            rest = await client.get(
                f"/api/v1/pipelines/{KEY}/history", params={"before": first["next_before"]}
            )
            bad = await client.get(f"/api/v1/pipelines/{KEY}/history?limit=0")
            unknown = await client.get("/api/v1/pipelines/nope@main/history")
            metrics = (await client.get("/metrics")).text
    finally:
        await monitor.stop()
        store.close()
    # Runs end 2 minutes after their creation (n minutes past BASE_TIME): red from the end
    # of run 2 (minute 4) to the end of run 4 (minute 6).
    assert entry["health"] == {
        "kept": 4,
        "finished": 4,
        "success_ratio": 0.5,
        "median_duration_s": 120.0,
        "last_success_at": "2026-11-23T12:06:00.000Z",
        "recoveries": 1,
        "mttr_s": 120.0,
    }
    assert [(p["id"], p["status"]) for p in first["pipelines"]] == [
        (5004, "success"),
        (5003, "failed"),
        (5002, "failed"),
    ]
    assert (first["key"], first["kept"], first["next_before"]) == (KEY, 4, 5002)
    assert first["pipelines"][0] == {
        "id": 5004,
        "status": "success",
        "sha": github_run(4)["head_sha"],
        "web_url": github_run(4)["html_url"],
        "created_at": "2026-11-23T12:04:00.000Z",
        "started_at": "2026-11-23T12:04:00.000Z",
        "finished_at": "2026-11-23T12:06:00.000Z",
        "duration_s": 120.0,
    }
    assert [p["id"] for p in rest.json()["pipelines"]] == [5001]
    assert rest.json()["next_before"] is None
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_request")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    labels = f'key="{KEY}",provider="github"'
    for line in (
        f"conveyor_monitor_success_ratio{{{labels}}} 0.5",
        f"conveyor_monitor_finished_pipelines{{{labels}}} 4.0",
        f'conveyor_monitor_pipeline_duration_seconds{{{labels},quantile="0.5"}} 120.0',
        f"conveyor_monitor_pipeline_duration_seconds_sum{{{labels}}} 480.0",
        f"conveyor_monitor_pipeline_duration_seconds_count{{{labels}}} 4.0",
        f"conveyor_monitor_mttr_seconds{{{labels}}} 120.0",
        f"conveyor_monitor_last_success_timestamp_seconds{{{labels}}} 1.79543556e+09",
    ):
        assert line in metrics
    assert f"conveyor_monitor_time_since_last_success_seconds{{{labels}}}" in metrics
    assert "# TYPE conveyor_monitor_pipeline_duration_seconds summary" in metrics


async def test_restart_restores_history_and_figures_before_any_fetch(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    store = open_store(home)
    first = _monitor(fake, store)
    await first.sync_once()
    _recover(fake)
    await first.sync_once()
    await first.stop()
    store.close()
    for repo in ("group/sub/app", "group/other", "octo/api", "folder/app"):
        fake.faults[repo] = Fault.HANG  # the restarted monitor's fetches get nothing
    reopened = open_store(home)
    second = _monitor(fake, reopened)
    try:
        await second.start()
        async with open_api_client(second) as client:
            entry = (await client.get(f"/api/v1/pipelines/{KEY}")).json()
            history = (await client.get(f"/api/v1/pipelines/{KEY}/history")).json()
            other = (await client.get("/api/v1/pipelines/group/sub/app@main")).json()
    finally:
        await second.stop()
        reopened.close()
    assert (entry["stale"], entry["health"]["success_ratio"], entry["health"]["mttr_s"]) == (
        True,
        0.5,
        120.0,
    )
    assert [p["id"] for p in history["pipelines"]] == [5004, 5003, 5002, 5001]
    assert other["health"]["kept"] == 4


async def test_history_is_written_only_when_a_pipeline_is_new_or_changed(
    fake: FakeUpstream,
) -> None:
    store = CountingStore()
    monitor = _monitor(fake, store, history_limit=3)
    try:
        await monitor.sync_once()
        await monitor.sync_once()  # nothing changed upstream
        _recover(fake)
        await monitor.sync_once()
    finally:
        await monitor.stop()
    # First sync: every target's pipelines in one write (gitlab 4 + 2 but kept 3 + 2,
    # github 3, jenkins 2); the unchanged sync writes nothing; then run 3's end and run 4.
    assert [len(batch) for batch in store.history_writes] == [10, 2]
    assert store.history_writes[1] == [5003, 5004]
    kept = [r.pipeline_id for r in store.load_history() if r.key == KEY]
    assert kept == [5004, 5003, 5002]  # history_limit = 3


async def test_snapshots_are_written_for_changed_entries_and_all_at_stop(
    fake: FakeUpstream,
) -> None:
    store = CountingStore()
    monitor = _monitor(fake, store)
    keys = sorted(monitor.by_key)
    try:
        await monitor.sync_once()
        await monitor.sync_once()  # nothing changed upstream: only fetched_at is newer
        _recover(fake)
        await monitor.sync_once()
        fake.faults["folder/app"] = Fault.HTTP_502
        await monitor.sync_once()
    finally:
        await monitor.stop()
    assert store.snapshot_writes[:4] == [keys, [], [KEY], ["folder/app@main"]]
    assert store.snapshot_writes[4:] == [keys]  # at stop: every entry, its last fetched_at
    saved = {s.key: s for s in store.load_snapshots()}
    for key in keys:
        entry = monitor.cache.get(key)
        assert entry is not None
        assert (saved[key].data_json, saved[key].fetched_at) == (entry.body, entry.fetched_at)
