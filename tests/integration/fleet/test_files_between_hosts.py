"""Files between jobs on two workers that share no folder: job A on one AttemptHost leaves
an artifact, a dotenv variable and a cache; job B on another host (its own home) receives
all three through a real server's files API, which keeps them where local jobs do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson

from conveyor.engine.artifacts import artifacts_dir
from conveyor.engine.cache import cache_folder, cache_root
from conveyor.engine.dotenv import dotenv_path
from conveyor.engine.executor import AttemptSpec, WorkspaceSource
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.fleet.host import AttemptHost, Origin
from conveyor.model import Artifacts, Cache, LogRecord, Status, Step, Stream
from conveyor.outbound.retry import RetryPolicy
from conveyor.store.paths import run_dir
from tests.fakes.git_repos import GitRepo
from tests.integration.fleet.files_server import files_server, remote

__all__ = ["remote"]  # the fixture

NO_WAIT = RetryPolicy(max_attempts=2, should_wait=False)
BUILD = """\
mkdir -p dist deps
echo "built from $(cat README)" > dist/app.txt
echo VERSION=1.2.3 > build.env
echo "lib v1" > deps/lib.txt
"""
TEST = 'cat dist/app.txt; echo "version=$VERSION"; cat deps/lib.txt'


class Output:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def __call__(self, records: Sequence[LogRecord]) -> None:
        self.records.extend(records)

    def texts(self, stream: Stream | None = None) -> list[str]:
        return [r.text for r in self.records if stream is None or r.stream is stream]


def _host(tmp_path: Path, name: str, **changes: object) -> AttemptHost:
    runner = LocalRunner(grace_s=0.3, groups=ProcessGroups())
    return AttemptHost(tmp_path / name, name, runner=runner, **changes)  # type: ignore[arg-type]


def _spec(run_id: str, job: str, sha: str, script: str, **changes: object) -> AttemptSpec:
    folder = f"/srv/conveyor/runs/{run_id}/work/{job}-1"
    source = WorkspaceSource("/srv/repo", True, sha, folder)
    spec = AttemptSpec(run_id, job, 1, 1, source, {}, (Step("script", script),))
    return spec._replace(**{"shell": "sh", **changes})


async def test_artifact_dotenv_and_cache_reach_a_job_on_another_worker(
    tmp_path: Path, remote: GitRepo
) -> None:
    cache = Cache(key="deps", paths=("deps/",))
    with files_server(tmp_path, remote) as server:
        origin = Origin("acme/app", remote.clone_url, server.base_url, server.token)
        build = _spec(
            server.run_id, "build", remote.head(), BUILD,
            artifacts=Artifacts(paths=("dist/",), dotenv=("build.env",)), caches=(cache,),
        )  # fmt: skip
        first, second = _host(tmp_path, "w1"), _host(tmp_path, "w2")
        built_out = Output()
        built = await first.run(build, origin, built_out)
        assert (built.status, built.worker) == (Status.SUCCESS, "w1"), built_out.texts()
        test = _spec(
            server.run_id, "test", remote.head(), TEST,
            artifacts_from=("build",), caches=(replace(cache, policy="pull"),),
        )  # fmt: skip
        out = Output()
        tested = await second.run(test, origin, out)
        await first.aclose()
        await second.aclose()
        assert (tested.status, tested.worker) == (Status.SUCCESS, "w2"), out.texts()
        assert out.texts(Stream.STDOUT) == ["built from hi", "version=1.2.3", "lib v1"]
        # Kept where a local job of the run keeps them (and reads them).
        home = server.served.home
        folder = run_dir(home, server.run_id)
        assert (artifacts_dir(folder, "build") / "dist" / "app.txt").is_file()
        assert orjson.loads(dotenv_path(folder, "build").read_bytes()) == {"VERSION": "1.2.3"}
        assert (cache_root(home, folder) / cache_folder("deps") / "deps" / "lib.txt").is_file()
    assert not (tmp_path / "w1" / "cache").exists()  # caches went to the server only


async def test_upload_the_server_refuses_fails_a_successful_job(
    tmp_path: Path, remote: GitRepo
) -> None:
    with files_server(tmp_path, remote) as server:
        server.finish()  # its token has expired with the run
        origin = Origin("acme/app", remote.clone_url, server.base_url, server.token)
        spec = _spec(
            server.run_id, "build", remote.head(), "mkdir dist; echo x > dist/a",
            artifacts=Artifacts(paths=("dist/",)),
        )  # fmt: skip
        host, out = _host(tmp_path, "w1", files_retry=NO_WAIT), Output()
        result = await host.run(spec, origin, out)
        await host.aclose()
    assert result.status is Status.FAILED
    assert result.reason == "files API: artifacts of build: the server answered 403"
    assert out.texts()[-1] == result.reason
    assert server.token not in repr(out.records)


async def test_artifacts_that_cannot_be_fetched_fail_before_the_steps(
    tmp_path: Path, remote: GitRepo
) -> None:
    origin = Origin("acme/app", remote.clone_url, "http://127.0.0.1:9", "r1:" + "0" * 64)
    spec = _spec("r1", "test", remote.head(), "echo never", artifacts_from=("build",))
    host, out = _host(tmp_path, "w1", files_retry=NO_WAIT), Output()
    result = await host.run(spec, origin, out)
    await host.aclose()
    assert (result.status, result.steps) == (Status.FAILED, ())
    assert result.reason is not None and result.reason.startswith("files API: artifacts of build")
    assert "never" not in out.texts()
