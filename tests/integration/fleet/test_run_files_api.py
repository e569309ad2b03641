"""The files API (server.runfiles) on a real server: artifacts, dotenv and caches stored
where local jobs keep them, run tokens (401, 403 for another run's or a finished run's),
404s, size limits and bad archives, every error in the envelope."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from conveyor.engine.artifacts import artifacts_dir
from conveyor.engine.cache import cache_folder, cache_root
from conveyor.engine.dotenv import dotenv_path
from conveyor.fleet.archive import pack_folder, unpack_archive
from conveyor.store.paths import run_dir
from tests.fakes.git_repos import GitRepo
from tests.integration.fleet.files_server import FilesServer, running_run, serving
from tests.integration.server.conftest import Served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module (starting one costs a second); each test has its run."""
    base = tmp_path_factory.mktemp("files-api")
    remote = GitRepo.create(base / "remote", {"README": "hi\n"})
    with serving(base, remote, max_body_bytes=64 * 1024) as served:
        yield served


@pytest.fixture
def server(served: Served) -> FilesServer:
    return running_run(served)


def _archive(tmp_path: Path, files: dict[str, str]) -> bytes:
    folder = tmp_path / "to-send"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    pack_folder(folder, tmp_path / "a.tar.gz")
    return (tmp_path / "a.tar.gz").read_bytes()


def _files_of(body: bytes, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "got.tar.gz").write_bytes(body)
    unpack_archive(tmp_path / "got.tar.gz", tmp_path / "got", max_bytes=1 << 20)
    root = tmp_path / "got"
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def _call(server: FilesServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    token = kwargs.pop("token", server.token)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = server.base_url + f"/api/v1/runs/{kwargs.pop('run_id', server.run_id)}" + path
    return httpx.request(method, url, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "request_id"}
    return response.status_code, body["error"]["code"]


def test_artifacts_round_trip_where_local_jobs_keep_them(
    server: FilesServer, tmp_path: Path
) -> None:
    body = _archive(tmp_path, {"dist/app.txt": "built\n", "report.txt": "ok\n"})
    put = _call(server, "PUT", "/jobs/build/artifacts", content=body)
    assert (put.status_code, put.json()) == (200, {"files": 2})
    stored = artifacts_dir(run_dir(server.served.home, server.run_id), "build")
    assert (stored / "dist" / "app.txt").read_text() == "built\n"
    got = _call(server, "GET", "/jobs/build/artifacts")
    assert (got.status_code, got.headers["content-type"]) == (200, "application/gzip")
    assert _files_of(got.content, tmp_path) == {"dist/app.txt": "built\n", "report.txt": "ok\n"}


def test_artifacts_upload_replaces_the_earlier_ones(server: FilesServer, tmp_path: Path) -> None:
    _call(server, "PUT", "/jobs/build/artifacts", content=_archive(tmp_path, {"old.txt": "1"}))
    second = _archive(tmp_path / "2", {"new.txt": "2"})
    assert _call(server, "PUT", "/jobs/build/artifacts", content=second).status_code == 200
    got = _call(server, "GET", "/jobs/build/artifacts")
    assert _files_of(got.content, tmp_path) == {"new.txt": "2"}


def test_job_names_with_slashes_and_spaces_travel_encoded(served: Served, tmp_path: Path) -> None:
    server = running_run(served, ("deploy/prod [A=1]",))
    body = _archive(tmp_path, {"x.txt": "x"})
    path = "/jobs/deploy%2Fprod%20%5BA%3D1%5D/artifacts"
    assert _call(server, "PUT", path, content=body).status_code == 200
    stored = artifacts_dir(run_dir(server.served.home, server.run_id), "deploy/prod [A=1]")
    assert (stored / "x.txt").read_text() == "x"


def test_missing_artifacts_are_404(server: FilesServer) -> None:
    assert _error(_call(server, "GET", "/jobs/build/artifacts")) == (404, "artifacts_not_found")


def test_dotenv_round_trip_in_the_local_place(server: FilesServer) -> None:
    put = _call(server, "PUT", "/jobs/build/dotenv", content=b'{"VERSION": "1.2.3"}')
    assert (put.status_code, put.json()) == (200, {"variables": 1})
    stored = dotenv_path(run_dir(server.served.home, server.run_id), "build")
    assert orjson.loads(stored.read_bytes()) == {"VERSION": "1.2.3"}
    assert _call(server, "GET", "/jobs/build/dotenv").json() == {"VERSION": "1.2.3"}


def test_empty_dotenv_removes_an_earlier_one(server: FilesServer) -> None:
    _call(server, "PUT", "/jobs/build/dotenv", content=b'{"A": "1"}')
    assert _call(server, "PUT", "/jobs/build/dotenv", content=b"{}").status_code == 200
    assert _error(_call(server, "GET", "/jobs/build/dotenv")) == (404, "dotenv_not_found")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"bad name": "x"}', b'{"A": 1}', orjson.dumps({"A": "x" * 6000})],
)
def test_invalid_dotenv_is_refused(server: FilesServer, body: bytes) -> None:
    assert _error(_call(server, "PUT", "/jobs/build/dotenv", content=body)) == (
        422,
        "invalid_dotenv",
    )


def test_caches_are_shared_under_the_servers_cache_root(
    server: FilesServer, tmp_path: Path
) -> None:
    body = _archive(tmp_path, {"deps/lib.txt": "v1"})
    assert _call(server, "PUT", "/caches/deps-main", content=body).json() == {"files": 1}
    home = server.served.home
    root = cache_root(home, run_dir(home, server.run_id))
    assert (root / cache_folder("deps-main") / "deps" / "lib.txt").read_text() == "v1"
    got = _call(server, "GET", "/caches/deps-main")
    assert _files_of(got.content, tmp_path) == {"deps/lib.txt": "v1"}
    assert _error(_call(server, "GET", "/caches/other")) == (404, "cache_not_found")


def test_invalid_cache_key_is_refused(server: FilesServer) -> None:
    assert _error(_call(server, "GET", "/caches/%2E%2E")) == (422, "invalid_cache_key")


def test_requests_without_a_valid_token_are_401(server: FilesServer) -> None:
    assert _error(_call(server, "GET", "/jobs/build/dotenv", token="")) == (401, "unauthorized")
    forged = server.run_id + ":" + "0" * 64
    assert _error(_call(server, "GET", "/jobs/build/dotenv", token=forged)) == (
        401,
        "unauthorized",
    )
    assert _error(_call(server, "GET", "/jobs/build/dotenv", token="nonsense")) == (
        401,
        "unauthorized",
    )


def test_token_of_another_run_is_403(server: FilesServer) -> None:
    other = server.token_of("20261207-other-run")
    assert _error(_call(server, "GET", "/jobs/build/dotenv", token=other)) == (403, "forbidden")


def test_token_of_a_finished_run_is_refused(server: FilesServer, tmp_path: Path) -> None:
    server.finish()
    body = _archive(tmp_path, {"x.txt": "x"})
    response = _call(server, "PUT", "/jobs/build/artifacts", content=body)
    assert _error(response) == (403, "run_token_expired")


def test_unknown_run_and_job_are_404(server: FilesServer) -> None:
    run_id = "20261207-no-such-run"
    response = _call(
        server, "GET", "/jobs/build/dotenv", run_id=run_id, token=server.token_of(run_id)
    )
    assert _error(response) == (404, "run_not_found")
    assert _error(_call(server, "GET", "/jobs/nope/dotenv")) == (404, "job_not_found")


def test_body_over_the_servers_limit_is_413(server: FilesServer) -> None:
    response = _call(server, "PUT", "/caches/big", content=b"x" * (65 * 1024))
    assert _error(response) == (413, "payload_too_large")


def test_streamed_body_over_the_limit_is_413_and_leaves_nothing(server: FilesServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 8192

    response = _call(server, "PUT", "/jobs/build/artifacts", content=chunks())
    assert _error(response) == (413, "payload_too_large")
    transfers = run_dir(server.served.home, server.run_id) / ".transfers"
    assert not transfers.exists() or list(transfers.iterdir()) == []


def test_bad_archives_are_422(server: FilesServer, tmp_path: Path) -> None:
    assert _error(_call(server, "PUT", "/jobs/build/artifacts", content=b"not gzip")) == (
        422,
        "bad_archive",
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    response = _call(server, "PUT", "/caches/evil", content=buffer.getvalue())
    assert _error(response) == (422, "bad_archive")
    assert not (cache_root(server.served.home, tmp_path) / cache_folder("evil")).exists()
