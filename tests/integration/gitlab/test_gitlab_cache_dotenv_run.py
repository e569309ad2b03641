"""`conveyor run` with GitLab `cache:` (kept between runs) and `artifacts:reports:dotenv`,
on real git repositories in tmp_path; and concurrent saves of one cache key."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from conveyor.config.gitlab import load_gitlab
from conveyor.engine.cache import FolderCaches, cache_folder, restore_caches, save_caches
from conveyor.engine.dotenv import dotenv_path, received_dotenv
from conveyor.engine.runner import LocalRunner, ProcessGroups
from conveyor.engine.scheduler import RunSetup, execute_run
from conveyor.model import Cache, Event, EventKind, RunRecord, Status
from conveyor.plan import plan
from tests.fakes.memory_logs import MemoryLogs
from tests.fakes.memory_store import MemoryRunStore


def git_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "init")):
        subprocess.run(
            ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return root


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "run", "--json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONVEYOR_HOME": str(cwd / ".home")},
        check=False,
    )


def logs(cwd: Path, run_id: str, job: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "logs", run_id, job],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONVEYOR_HOME": str(cwd / ".home")},
        check=False,
    )
    return done.stdout


_CACHED = """
job:
  script:
    - if [ -f .deps/count ]; then echo "had $(cat .deps/count)"; fi
    - mkdir -p .deps && echo "$(( $(cat .deps/count 2>/dev/null || echo 0) + 1 ))" > .deps/count
  cache:
    key: deps-$CI_COMMIT_REF_SLUG
    paths: [.deps/]
"""


def test_conveyor_run_keeps_gitlab_cache_between_runs(tmp_path: Path) -> None:
    repo = git_repo(tmp_path, {".gitlab-ci.yml": _CACHED, ".gitignore": ".home/\n"})
    first = run(repo)
    assert first.returncode == 0, first.stderr
    saved = repo / ".home" / "cache" / "deps-main" / ".deps" / "count"
    assert saved.read_text() == "1\n"
    second = run(repo)
    assert second.returncode == 0, second.stderr
    run_id = json.loads(second.stdout)["run_id"]
    assert "had 1" in logs(repo, run_id, "job")
    assert saved.read_text() == "2\n"


def test_conveyor_run_saves_cache_per_when(tmp_path: Path) -> None:
    pipeline = """
ok-job:
  script: [mkdir -p out, echo ok > out/f]
  cache: {key: on-success, paths: [out/]}
failing:
  script: [mkdir -p out, echo bad > out/f, exit 3]
  cache:
    - {key: on-success-too, paths: [out/]}
    - {key: on-failure, paths: [out/], when: on_failure}
"""
    repo = git_repo(tmp_path, {".gitlab-ci.yml": pipeline, ".gitignore": ".home/\n"})
    done = run(repo)
    assert done.returncode == 1
    cache = repo / ".home" / "cache"
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [
        "on-failure",
        "on-success",
    ]


_DOTENV = """
build:
  stage: build
  script:
    - echo "PASSWORD=s3cret-value" > build.env
    - echo "TAG=v9" >> build.env
  artifacts:
    reports:
      dotenv: build.env
deploy:
  stage: deploy
  script:
    - echo "tag=$TAG password=$PASSWORD"
"""


def test_conveyor_run_hands_dotenv_to_later_jobs_and_keeps_it(tmp_path: Path) -> None:
    repo = git_repo(tmp_path, {".gitlab-ci.yml": _DOTENV, ".gitignore": ".home/\n"})
    done = run(repo)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    assert "tag=v9 password=s3cret-value" in logs(repo, run_id, "deploy")
    build_log = logs(repo, run_id, "build")
    assert "exported PASSWORD, TAG" in build_log
    assert "s3cret-value" not in build_log  # names only, never values
    run_dir = repo / ".home" / "runs" / run_id
    assert received_dotenv(run_dir, ["build"]) == {"PASSWORD": "s3cret-value", "TAG": "v9"}


async def test_dotenv_value_equal_to_a_secret_is_masked(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", {".gitlab-ci.yml": _DOTENV})
    the_plan = plan(load_gitlab(repo / ".gitlab-ci.yml"), Event(EventKind.PUSH, ref="main", sha=""))
    store = MemoryRunStore()
    run_record = store.create_run(
        RunRecord("r1", "repo", "main", "", EventKind.PUSH, Status.PENDING, datetime.now(UTC))
    )
    sink = MemoryLogs()
    record = await execute_run(
        the_plan,
        run_record,
        RunSetup(
            store=store,
            logs=sink,
            workspace=repo,
            run_dir=tmp_path / "run",
            concurrency=2,
            secrets={"HIDDEN": "s3cret-value"},
            base_env={"PATH": "/usr/bin:/bin"},
            runner=LocalRunner(store=store, grace_s=0.5, groups=ProcessGroups()),
            grace_s=0.5,
        ),
    )
    assert record.status is Status.SUCCESS
    deploy = [r.text for r in sink.records if r.job == "deploy"]
    assert "tag=v9 password=[MASKED]" in deploy
    assert not any("s3cret-value" in r.text for r in sink.records)


def test_dotenv_saved_in_run_folder_survives_for_a_resumed_job(tmp_path: Path) -> None:
    dest = dotenv_path(tmp_path, "build 1/2")
    dest.parent.mkdir(parents=True)
    dest.write_text(json.dumps({"A": "1"}))
    assert received_dotenv(tmp_path, ["build 1/2", "missing"]) == {"A": "1"}


def _workspace(root: Path, letter: str) -> Path:
    for i in range(20):
        path = root / "deps" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(letter * 2000)
    return root


async def test_cache_concurrent_saves_and_restores_see_whole_snapshots(tmp_path: Path) -> None:
    cache = Cache(key="shared", paths=("deps/",))
    root = tmp_path / "cache"
    store = FolderCaches(root)
    writers = [_workspace(tmp_path / f"w{letter}", letter) for letter in "AB"]
    readers = [tmp_path / f"r{i}" for i in range(6)]
    for reader in readers:
        reader.mkdir()
    await save_caches(
        [cache], ["shared"], store=store, workspace=writers[0], succeeded=True, say=lambda _: None
    )

    async def restore(where: Path) -> None:
        await restore_caches([cache], store=store, workspace=where, env={}, say=lambda _: None)

    async def save(where: Path) -> None:
        await save_caches(
            [cache], ["shared"], store=store, workspace=where, succeeded=True, say=lambda _: None
        )

    tasks = [save(writers[i % 2]) for i in range(6)] + [restore(r) for r in readers]
    await asyncio.gather(*tasks)
    for reader in readers:
        contents = {p.read_text()[0] for p in (reader / "deps").iterdir()}
        assert len(list((reader / "deps").iterdir())) == 20
        assert len(contents) == 1
    assert sorted(p.name for p in root.iterdir()) == [".locks", ".tmp", cache_folder("shared")]
    assert list((root / ".tmp").iterdir()) == []
