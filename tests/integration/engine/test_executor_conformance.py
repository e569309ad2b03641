"""The Executor contract (engine.executor), held by every implementation: LocalExecutor
(real processes in their own groups, and the same inside a bubblewrap sandbox: every spec
with `sandbox` on, where bwrap works) and the scripted fake. Scripts use only what all
understand: `echo`, `echo … >&2`, `sleep`, `exit`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.engine.executor import (
    AttemptResult,
    AttemptSpec,
    Executor,
    OutputSink,
    WorkspaceSource,
    attempt_spec_from_dict,
    attempt_spec_to_dict,
)
from conveyor.engine.local import LocalExecutor
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.engine.sandbox import Sandbox
from conveyor.engine.workspace import JobWorkspaces
from conveyor.fleet.host import AttemptHost, Origin
from conveyor.model import Artifacts, ArtifactWhen, Cache, LogRecord, Status, Step, Stream
from tests.fakes.executor import ScriptedExecutor
from tests.fakes.git_repos import GitRepo
from tests.fleet_worker import start_fleet_worker, stop_fleet_worker
from tests.redis import RedisServer
from tests.sandboxing import requires_bwrap


@dataclass(slots=True)
class Sandboxed:
    """The local executor with every spec's sandbox on (what the server hands it)."""

    inner: LocalExecutor

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        return await self.inner.run(spec._replace(sandbox=Sandbox("bwrap")), on_output)

    def cancel(self, run_id: str, job: str) -> None:
        self.inner.cancel(run_id, job)


@dataclass(slots=True)
class Hosted:
    """A worker's AttemptHost (fleet.host) as an Executor: each spec checked out from a
    real repository at its commit, in the worker's own home."""

    host: AttemptHost
    origin: Origin
    sha: str

    async def run(self, spec: AttemptSpec, on_output: OutputSink) -> AttemptResult:
        source = spec.workspace._replace(isolate=True, sha=self.sha)
        return await self.host.run(spec._replace(workspace=source), self.origin, on_output)

    def cancel(self, run_id: str, job: str) -> None:
        self.host.cancel(run_id, job)


@pytest.fixture(scope="module")
def fleet_broker(redis_server: RedisServer) -> Iterator[str]:
    """A broker database with one real fleet worker (tests/fleet_worker.py) consuming
    `default`, for the CeleryExecutor."""
    url = redis_server.url(redis_server.reserved_database())
    worker = start_fleet_worker(url, "conformance", ("default",))
    yield url
    stop_fleet_worker(worker)


@pytest.fixture(
    params=[
        "local",
        pytest.param("local-bwrap", marks=requires_bwrap),
        "scripted",
        "hosted",
        "celery",
    ]
)
async def executor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Executor]:
    if request.param == "scripted":
        yield ScriptedExecutor()
        return
    if request.param == "hosted":
        repo = GitRepo.create(tmp_path / "origin", {"README": "hello\n"})
        runner = LocalRunner(grace_s=0.3, groups=ProcessGroups())
        host = AttemptHost(tmp_path / "worker", "w1", runner=runner)
        yield Hosted(host, Origin("acme/app", repo.clone_url, "", ""), repo.head())
        return
    if request.param == "celery":
        from conveyor.fleet.executor import CeleryExecutor, FleetClient

        url = request.getfixturevalue("fleet_broker")
        fleet = FleetClient(url)
        # Every test here runs attempt r1:build:1: the claims and streams of the last go.
        await fleet.redis.eval(
            "for _, k in ipairs(redis.call('keys', 'conveyor:*:r1:*')) do redis.call('del', k) end",
            0,
        )
        yield CeleryExecutor(fleet, {}, pending_timeout_s=30)
        await fleet.close()
        return
    workspaces = JobWorkspaces(tmp_path, isolate=False, sha="", root=tmp_path / "run" / "work")
    runner = LocalRunner(grace_s=0.3, groups=ProcessGroups())
    local = LocalExecutor(runner, workspaces, tmp_path / "run", None)
    yield Sandboxed(local) if request.param == "local-bwrap" else local
    await workspaces.close()


def _spec(tmp_path: Path, *scripts: str, **fields: object) -> AttemptSpec:
    steps = tuple(Step(name=f"s{n}", run=script) for n, script in enumerate(scripts, start=1))
    values: dict[str, object] = {
        "run_id": "r1",
        "job": "build",
        "attempt": 1,
        "first_line": 1,
        "workspace": WorkspaceSource(str(tmp_path), False, "", str(tmp_path)),
        "env": {"PATH": os.environ["PATH"]},
        "steps": steps,
        "shell": "sh",
        **fields,
    }
    return AttemptSpec(**values)  # type: ignore[arg-type]  # test values of each field


class Output:
    def __init__(self) -> None:
        self.batches: list[Sequence[LogRecord]] = []

    def __call__(self, records: Sequence[LogRecord]) -> None:
        self.batches.append(list(records))

    @property
    def records(self) -> list[LogRecord]:
        return [r for batch in self.batches for r in batch]

    def texts(self, stream: Stream | None = None) -> list[str]:
        return [r.text for r in self.records if stream is None or r.stream is stream]


async def test_executor_success_numbers_lines_from_first_line(
    executor: Executor, tmp_path: Path
) -> None:
    out = Output()
    spec = _spec(tmp_path, "echo one\necho two", "echo three", first_line=5)
    result = await executor.run(spec, out)
    assert (result.status, result.exit_code, result.last_line) == (Status.SUCCESS, 0, 7)
    assert [(r.n, r.text, r.step) for r in out.records] == [
        (5, "one", "s1"),
        (6, "two", "s1"),
        (7, "three", "s2"),
    ]
    assert [(s.name, s.status) for s in result.steps] == [
        ("s1", Status.SUCCESS),
        ("s2", Status.SUCCESS),
    ]
    assert result.worker  # names where the attempt ran ("local" for LocalExecutor)


async def test_executor_stderr_is_its_own_stream(executor: Executor, tmp_path: Path) -> None:
    out = Output()
    await executor.run(_spec(tmp_path, "echo oops >&2"), out)
    assert out.texts(Stream.STDERR) == ["oops"]


async def test_executor_failing_step_stops_the_steps_after_it(
    executor: Executor, tmp_path: Path
) -> None:
    out = Output()
    result = await executor.run(_spec(tmp_path, "exit 3", "echo never"), out)
    assert (result.status, result.exit_code, result.timed_out) == (Status.FAILED, 3, False)
    assert result.reason == "step 's1' exited with code 3"
    assert "never" not in out.texts()
    assert [s.status for s in result.steps] == [Status.FAILED]


async def test_executor_time_limit_fails_as_timed_out(executor: Executor, tmp_path: Path) -> None:
    result = await executor.run(_spec(tmp_path, "sleep 5", timeout_s=0.3), Output())
    assert (result.status, result.exit_code, result.timed_out) == (Status.FAILED, None, True)
    assert result.reason == "job timed out after 0.3s"


async def test_executor_cancel_message_ends_attempt_canceled(
    executor: Executor, tmp_path: Path
) -> None:
    out = Output()
    running = asyncio.ensure_future(executor.run(_spec(tmp_path, "echo started\nsleep 30"), out))
    async with asyncio.timeout(10):
        while "started" not in out.texts():
            await asyncio.sleep(0.01)
    executor.cancel("r1", "build")
    async with asyncio.timeout(10):
        result = await running
    assert result.status is Status.CANCELED
    assert result.last_line >= 1


async def test_executor_cancel_of_unknown_attempt_is_ignored(
    executor: Executor, tmp_path: Path
) -> None:
    executor.cancel("r1", "nothing-runs")
    assert (await executor.run(_spec(tmp_path, "exit 0"), Output())).status is Status.SUCCESS


async def test_executor_masks_secrets_in_output_and_reason(
    executor: Executor, tmp_path: Path
) -> None:
    out = Output()
    spec = _spec(
        tmp_path,
        "echo token=$TOKEN",
        secrets={"TOKEN": "s3cr3t-value"},
        mask=("s3cr3t-value",),
    )
    await executor.run(spec, out)
    assert out.texts(Stream.STDOUT) == ["token=[MASKED]"]


async def test_executor_after_steps_never_change_the_status(
    executor: Executor, tmp_path: Path
) -> None:
    out = Output()
    spec = _spec(tmp_path, "exit 0", after_steps=(Step(name="cleanup", run="echo after\nexit 7"),))
    result = await executor.run(spec, out)
    assert result.status is Status.SUCCESS
    assert "after" in out.texts()


async def test_executor_runs_a_spec_that_crossed_json(executor: Executor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "echo $GREETING", env={"PATH": os.environ["PATH"], "GREETING": "hi"})
    carried = attempt_spec_from_dict(json.loads(json.dumps(attempt_spec_to_dict(spec))))
    out = Output()
    result: AttemptResult = await executor.run(carried, out)
    assert (result.status, out.texts()) == (Status.SUCCESS, ["hi"])


def test_attempt_spec_round_trips_through_json(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "echo a",
        after_steps=(Step(name="after", run="echo b", timeout_s=3.0, env={"X": "1"}),),
        secrets={"TOKEN": "value"},
        mask=("value",),
        artifacts_from=("build",),
        artifacts=Artifacts(paths=("dist/",), exclude=("*.tmp",), when=ArtifactWhen.ALWAYS),
        caches=(Cache(key="deps", paths=("node_modules/",), key_files=("package.json",)),),
        timeout_s=12.5,
        sandbox=Sandbox("bwrap", network=False, max_processes=64, max_memory_mb=512),
        tags=("docker", "linux"),
    )
    data = json.loads(json.dumps(attempt_spec_to_dict(spec)))
    assert attempt_spec_from_dict(data) == spec
