"""One behaviour of the run chain, proved once for its three callers: `conveyor run`
(FolderSource + NewRun), `conveyor play` (RunFolderSource + ResumedRun) and the server's
queue (MirrorSource + QueuedRun). Each runs the same pipeline from a real git repository
through `runs.chain.execute_request`; the behaviours live in the chain, not in a caller."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor.clock import SYSTEM_CLOCK
from conveyor.engine.scheduler import RunControls
from conveyor.git.checkout import Checkouts
from conveyor.git.describe import event_from_checkout, start_checkout_query
from conveyor.model import Event, EventKind, Plan, RunRecord, Status
from conveyor.runs.chain import RunRequest, Started, execute_request
from conveyor.runs.records import new_run_record
from conveyor.runs.sources import FolderSource, MirrorSource, RunFolderSource
from conveyor.runs.starts import NewRun, QueuedRun, ResumedRun
from conveyor.store import open_store
from conveyor.store.logreader import LogFileReader
from conveyor.store.paths import new_run_id, run_dir
from tests.fakes.git_repos import GitRepo

PIPELINE = """\
jobs:
  deploy:
    manual: true
    secrets: [SERVER_TOKEN, DEPLOY_KEY]
    steps:
      - run: echo "server=${SERVER_TOKEN:-none} deploy=$DEPLOY_KEY"
"""
ENV = {
    **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
    "SERVER_TOKEN": "server-token-value",
    "DEPLOY_KEY": "deploy-key-value",
}
RESERVED = frozenset({"SERVER_TOKEN"})


@dataclass
class Said:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)

    def open(self, plan: Plan, started: Started) -> _Controls:
        return _Controls()


class _Controls:
    async def __aenter__(self) -> RunControls:
        return RunControls()

    async def __aexit__(self, *exc: object) -> None:
        return None


Caller = Callable[[GitRepo, Path, Said], Awaitable[RunRecord | None]]


def _request(event: Event, **fields: object) -> RunRequest:
    return RunRequest(event, ".conveyor.yml", reserved_env=RESERVED, env=ENV, **fields)  # type: ignore[arg-type]


async def _cli_run(
    repo: GitRepo, home: Path, said: Said, play: frozenset[str] = frozenset({"deploy"})
) -> RunRecord | None:
    run_id = new_run_id()
    query = start_checkout_query(repo.path, kind=EventKind.PUSH)
    file = repo.path / ".conveyor.yml"
    start = NewRun(home, run_id, file, (), SYSTEM_CLOCK, said.say, said.say)
    source = FolderSource(repo.path, query, file, run_dir(home, run_id))
    try:
        return await execute_request(_request(Event(), play=play), source, start, said)
    finally:
        assert start.store is not None
        start.store.close()


async def _cli_play(repo: GitRepo, home: Path, said: Said) -> RunRecord | None:
    first = await _cli_run(repo, home, said, play=frozenset())
    assert first is not None
    store = open_store(home)
    try:
        run = store.get_run(first.run_id)
        assert run is not None and run.jobs[0].status is Status.MANUAL
        start = ResumedRun(store, home, run, "deploy", said.say)
        event = Event(kind=run.event, ref=run.ref, sha=run.sha, repo=run.repo)
        source = RunFolderSource(repo.path, repo.path / ".conveyor.yml", run_dir(home, run.run_id))
        return await execute_request(_request(event), source, start, said)
    finally:
        store.close()


async def _server(repo: GitRepo, home: Path, said: Said) -> RunRecord | None:
    event = event_from_checkout(repo.path, kind=EventKind.PUSH)
    event = Event(kind=event.kind, ref=event.ref, sha=event.sha, repo="group/app")
    store = open_store(home)
    try:
        run = store.create_run(new_run_record(event, new_run_id(), clock=SYSTEM_CLOCK, trigger={}))
        store.claim_run(run.run_id, owner_pid=os.getpid(), owner_started_ticks=0)
        checkouts = Checkouts(home / "mirrors", timeout_s=30, env=os.environ)
        source = MirrorSource(
            checkouts,
            "group/app",
            repo.clone_url,
            None,
            home / "worktrees" / run.run_id,
            run_dir(home, run.run_id),
        )

        async def started(run: RunRecord) -> None:
            return None

        start = QueuedRun(store, home, run, SYSTEM_CLOCK, started)
        return await execute_request(
            _request(event, play=frozenset({"deploy"})), source, start, said
        )
    finally:
        store.close()


@pytest.fixture(params=["cli_run", "cli_play", "server"])
def caller(request: pytest.FixtureRequest) -> Caller:
    return {"cli_run": _cli_run, "cli_play": _cli_play, "server": _server}[request.param]


async def test_chain_refuses_reserved_secret_names_for_every_caller(
    caller: Caller, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "repo", {".conveyor.yml": PIPELINE})
    said = Said()
    record = await caller(repo, tmp_path / "home", said)
    assert record is not None
    assert record.status is Status.SUCCESS
    reader = LogFileReader(run_dir(tmp_path / "home", record.run_id))
    lines = [r.text for r in reader.read_job("deploy")]
    # The reserved name reaches no job; the declared one does, masked in its output.
    assert "server=none deploy=[MASKED]" in lines
    assert any("SERVER_TOKEN are conveyor's own" in line for line in said.lines)
