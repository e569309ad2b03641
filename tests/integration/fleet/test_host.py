"""AttemptHost (fleet.host) with real git repositories and real processes: the checkout at
the exact commit from a per-worker mirror, the spec's folders moved to the worker's, the
result naming the worker, nothing left behind, no token in what leaves the host."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.engine.executor import AttemptSpec, WorkspaceSource
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.fleet.host import AttemptHost, Origin, origin_from_dict, origin_to_dict
from conveyor.model import LogRecord, Status, Step, Stream
from tests.fakes.git_repos import GitRepo

SERVER_DIR = "/srv/conveyor/runs/r1/work/build-1"
TOKEN = "clone-token-0123456789abcdefgh"


class Output:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def __call__(self, records: Sequence[LogRecord]) -> None:
        self.records.extend(records)

    def texts(self, stream: Stream | None = None) -> list[str]:
        return [r.text for r in self.records if stream is None or r.stream is stream]


def _host(tmp_path: Path, name: str = "w1", **changes: object) -> AttemptHost:
    runner = LocalRunner(grace_s=0.3, groups=ProcessGroups())
    return AttemptHost(tmp_path / name, name, runner=runner, **changes)  # type: ignore[arg-type]


def _spec(sha: str, *scripts: str, job: str = "build", **changes: object) -> AttemptSpec:
    steps = tuple(Step(name=f"s{n}", run=script) for n, script in enumerate(scripts, start=1))
    env = {"CI_PROJECT_DIR": SERVER_DIR, "CI_BUILDS_DIR": SERVER_DIR, "OUT": f"{SERVER_DIR}/out"}
    source = WorkspaceSource("/srv/repo", True, sha, SERVER_DIR)
    spec = AttemptSpec("r1", job, 1, 1, source, env, steps)
    return spec._replace(**{"shell": "sh", **changes})


def _origin(repo: GitRepo) -> Origin:
    return Origin("acme/app", repo.clone_url, "http://127.0.0.1:1", "run-token")


def test_origin_round_trips_and_hides_its_token() -> None:
    origin = Origin("acme/app", "https://git.example/app.git", "http://ci:8080", "t0ken-v4lue")
    assert origin_from_dict(origin_to_dict(origin)) == origin
    assert "t0ken-v4lue" not in repr(origin)
    older = {k: v for k, v in origin_to_dict(origin).items() if k != "provider"}
    assert origin_from_dict(older).provider == ""


async def test_host_runs_the_exact_commit_in_the_workers_folder(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    first = repo.head()
    repo.commit({"a.txt": "two\n"})
    host, out = _host(tmp_path), Output()
    spec = _spec(first, 'cat a.txt; echo "$CI_PROJECT_DIR"; echo "$OUT"; pwd; echo "$PATH"')
    result = await host.run(spec, _origin(repo), out)
    assert (result.status, result.worker) == (Status.SUCCESS, "w1")
    project = tmp_path / "w1" / "attempts" / "r1" / "build-1" / "project"
    assert out.texts(Stream.STDOUT) == [
        "one",
        str(project),
        f"{project}/out",
        str(project),
        os.environ["PATH"],  # the worker's safe environment under the spec's
    ]
    assert not (tmp_path / "w1" / "attempts" / "r1").exists()


async def test_host_gives_its_own_values_for_what_the_server_inherited(tmp_path: Path) -> None:
    """PATH and HOME the server took from its own environment are the worker's on the
    worker (it may be another kind of host); a value the pipeline set is kept, and a
    server-inherited name the worker lacks is left out."""
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    worker_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "worker-home")}
    host, out = _host(tmp_path, env=worker_env), Output()
    spec = _spec(repo.head(), 'echo "$HOME"; echo "$LANG"; echo "${TZ-unset}"; echo "$PATH"')
    server_env = {
        **spec.env,
        "PATH": f"/server/bin:{os.environ['PATH']}",  # inherited from the server
        "HOME": "/home/server",  # inherited from the server
        "TZ": "UTC",  # inherited: the worker has none
        "LANG": "C.UTF-8",  # set by the pipeline (the server's own differed)
    }
    spec = spec._replace(env=server_env, inherited=("PATH", "HOME", "TZ"))
    result = await host.run(spec, _origin(repo), out)
    assert result.status is Status.SUCCESS, out.texts()
    assert out.texts(Stream.STDOUT) == [
        str(tmp_path / "worker-home"),
        "C.UTF-8",
        "unset",
        os.environ["PATH"],
    ]


async def test_host_masks_the_workers_own_secrets_in_job_output(tmp_path: Path) -> None:
    """A job that learned the worker's broker URL or a clone token (by any way) cannot
    print them: they are masked as the server's own secrets are."""
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    broker = "redis://:broker-pass-0123456789@10.0.0.5:6379/0"
    host = _host(tmp_path, held_secrets=(broker,), clone_tokens={"acme/app": TOKEN})
    out = Output()
    spec = _spec(repo.head(), 'echo "$LEARNED"; echo "$TOKEN_SEEN"')
    spec = spec._replace(env={**spec.env, "LEARNED": broker, "TOKEN_SEEN": TOKEN})
    result = await host.run(spec, _origin(repo), out)
    assert result.status is Status.SUCCESS
    assert broker not in repr(out.records) and TOKEN not in repr(out.records)
    assert len(out.texts(Stream.STDOUT)) == 2


async def test_host_clones_once_and_fetches_new_commits(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    host = _host(tmp_path)
    first = await host.run(_spec(repo.head(), "cat a.txt"), _origin(repo), Output())
    second_sha = repo.commit({"a.txt": "two\n"})
    out = Output()
    second = await host.run(_spec(second_sha, "cat a.txt"), _origin(repo), out)
    assert (first.status, second.status, out.texts()) == (Status.SUCCESS, Status.SUCCESS, ["two"])
    assert [p.name for p in (tmp_path / "w1" / "mirrors").glob("*.git")] == ["acme__app.git"]


async def test_host_runs_attempts_of_one_repo_at_once(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    host, origin, sha = _host(tmp_path), _origin(repo), repo.head()
    results = await asyncio.gather(
        *(host.run(_spec(sha, "cat a.txt", job=f"j{n}"), origin, Output()) for n in range(4))
    )
    assert [r.status for r in results] == [Status.SUCCESS] * 4


async def test_host_checkout_failure_fails_the_attempt_naming_the_repo(tmp_path: Path) -> None:
    host, out = _host(tmp_path, clone_tokens={"acme/app": TOKEN}), Output()
    origin = Origin("acme/app", str(tmp_path / "missing"), "http://127.0.0.1:1", "run-token")
    result = await host.run(_spec("a" * 40, "echo never"), origin, out)
    assert result.status is Status.FAILED
    assert result.reason is not None and result.reason.startswith("checkout acme/app: ")
    assert (result.last_line, out.texts()) == (1, [result.reason])
    assert TOKEN not in repr(out.records) and "run-token" not in repr(out.records)
    assert not (tmp_path / "w1" / "attempts" / "r1").exists()


async def test_host_without_a_commit_fails_with_a_reason(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    result = await _host(tmp_path).run(_spec("", "echo never"), _origin(repo), Output())
    assert result.status is Status.FAILED
    assert result.reason is not None and "names no commit" in result.reason


async def test_host_cancel_stops_the_steps_and_cleans_up(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    host, out = _host(tmp_path), Output()
    running = asyncio.ensure_future(
        host.run(_spec(repo.head(), "echo started; sleep 30"), _origin(repo), out)
    )
    async with asyncio.timeout(20):
        while "started" not in out.texts():
            await asyncio.sleep(0.01)
    host.cancel("r1", "build")
    async with asyncio.timeout(10):
        result = await running
    assert (result.status, result.worker) == (Status.CANCELED, "w1")
    assert not (tmp_path / "w1" / "attempts" / "r1" / "build-1").exists()


async def test_host_cancel_before_the_steps_ends_the_attempt_canceled(tmp_path: Path) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    host = _host(tmp_path)
    running = asyncio.ensure_future(
        host.run(_spec(repo.head(), "echo no"), _origin(repo), Output())
    )
    await asyncio.sleep(0)  # the attempt has started its checkout
    host.cancel("r1", "build")
    async with asyncio.timeout(10):
        result = await running
    assert (result.status, result.steps, result.worker) == (Status.CANCELED, (), "w1")


async def test_host_discards_leftover_attempts(tmp_path: Path) -> None:
    leftover = tmp_path / "w1" / "attempts" / "r0" / "build-1"
    leftover.mkdir(parents=True)
    await _host(tmp_path).discard_leftovers()
    assert not (tmp_path / "w1" / "attempts").exists()


@pytest.mark.parametrize("job", ["../../escape", "a/b"])
async def test_host_keeps_each_attempt_inside_its_home(tmp_path: Path, job: str) -> None:
    repo = GitRepo.create(tmp_path / "origin", {"a.txt": "one\n"})
    out = Output()
    result = await _host(tmp_path).run(_spec(repo.head(), "pwd", job=job), _origin(repo), out)
    assert result.status is Status.SUCCESS
    assert Path(out.texts()[0]).is_relative_to(tmp_path / "w1" / "attempts")
