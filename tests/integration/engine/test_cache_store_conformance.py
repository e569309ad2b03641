"""The CacheStore contract (engine.cache), held by every implementation: FolderCaches (the
folders under `<home>/cache`), fleet.files.RemoteCaches (a worker's caches through a real
server's files API on loopback) and the in-memory fake."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor.engine.cache import CacheStore, FolderCaches
from conveyor.fleet.files import RemoteCaches, RunFiles, files_policy
from conveyor.outbound.client import OutboundClient
from tests.fakes.cache_store import MemoryCaches
from tests.fakes.git_repos import GitRepo
from tests.integration.fleet.files_server import running_run, serving
from tests.integration.server.conftest import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server of the remote store (one per module; each test has its own run and
    cache root)."""
    base = tmp_path_factory.mktemp("cache-server")
    with serving(base, GitRepo.create(base / "remote", {"README": "hi\n"})) as served:
        yield served


@pytest.fixture(params=["folder", "remote", "fake"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CacheStore]:
    if request.param == "folder":
        yield FolderCaches(tmp_path / "cache")
    elif request.param == "fake":
        yield MemoryCaches()
    else:
        server = running_run(request.getfixturevalue("served"))
        shutil.rmtree(server.served.home / "cache", ignore_errors=True)  # a fresh cache root
        http = OutboundClient(files_policy(timeout_s=10))
        files = RunFiles(server.base_url, server.token, server.run_id, http=http)
        yield RemoteCaches(files, tmp_path / "transfers")
        await http.aclose()


def _workspace(path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def _contents(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in path.rglob("*") if p.is_file()}


async def test_cache_store_restore_without_a_saved_cache_is_none(
    store: CacheStore, tmp_path: Path
) -> None:
    workspace = _workspace(tmp_path / "w", {"a.txt": "a"})
    assert await store.restore(["deps", "fallback"], workspace) is None
    assert _contents(workspace) == {"a.txt": "a"}


async def test_cache_store_save_then_restore_elsewhere(store: CacheStore, tmp_path: Path) -> None:
    writer = _workspace(tmp_path / "w", {"deps/a.txt": "a", "deps/sub/b.txt": "b", "x": "no"})
    assert await store.save("deps", writer, ["deps/"]) == 2
    reader = _workspace(tmp_path / "r", {"own.txt": "mine"})
    assert await store.restore(["deps"], reader) == ("deps", 2)
    assert _contents(reader) == {"own.txt": "mine", "deps/a.txt": "a", "deps/sub/b.txt": "b"}


async def test_cache_store_restores_the_first_key_that_has_a_cache(
    store: CacheStore, tmp_path: Path
) -> None:
    await store.save("second", _workspace(tmp_path / "w2", {"f": "2"}), ["f"])
    await store.save("third", _workspace(tmp_path / "w3", {"f": "3"}), ["f"])
    reader = tmp_path / "r"
    reader.mkdir()
    assert await store.restore(["first", "second", "third"], reader) == ("second", 1)
    assert _contents(reader) == {"f": "2"}


async def test_cache_store_save_replaces_the_whole_cache(store: CacheStore, tmp_path: Path) -> None:
    await store.save("k", _workspace(tmp_path / "w1", {"old.txt": "1", "both.txt": "1"}), ["*.txt"])
    await store.save("k", _workspace(tmp_path / "w2", {"both.txt": "2"}), ["*.txt"])
    reader = tmp_path / "r"
    reader.mkdir()
    await store.restore(["k"], reader)
    assert _contents(reader) == {"both.txt": "2"}


async def test_cache_store_save_of_nothing_keeps_the_old_cache(
    store: CacheStore, tmp_path: Path
) -> None:
    await store.save("k", _workspace(tmp_path / "w1", {"a.txt": "1"}), ["a.txt"])
    assert await store.save("k", _workspace(tmp_path / "w2", {"b.txt": "2"}), ["a.txt"]) == 0
    reader = tmp_path / "r"
    reader.mkdir()
    assert await store.restore(["k"], reader) == ("k", 1)
    assert _contents(reader) == {"a.txt": "1"}


async def test_cache_store_restore_overwrites_files_and_keeps_the_executable_bit(
    store: CacheStore, tmp_path: Path
) -> None:
    writer = _workspace(tmp_path / "w", {"bin/tool": "#!/bin/sh\n", "data.txt": "new"})
    (writer / "bin" / "tool").chmod(0o700)
    await store.save("k", writer, ["bin/", "data.txt"])
    reader = _workspace(tmp_path / "r", {"data.txt": "old"})
    await store.restore(["k"], reader)
    assert (reader / "data.txt").read_text() == "new"
    assert os.access(reader / "bin" / "tool", os.X_OK)
