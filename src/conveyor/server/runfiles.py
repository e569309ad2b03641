"""The files API: what a worker reads and writes of a run (fleet.files is its client).

    GET|PUT /api/v1/runs/{run_id}/jobs/{job}/artifacts   the job's artifacts, as tar.gz
    GET|PUT /api/v1/runs/{run_id}/jobs/{job}/dotenv      its dotenv variables, as JSON
    GET|PUT /api/v1/runs/{run_id}/caches/{key}           a GitLab cache, as tar.gz

Files are kept exactly where a local job keeps them (engine.artifacts, engine.dotenv,
engine.cache: `<home>/runs/<run>/artifacts/<job>/`, `<home>/runs/<run>/dotenv/<job>.json`,
`<home>/cache/<key>/`), so a run whose jobs run here and on workers sees one set of files
(and caches are shared across runs as for local jobs). An upload is streamed to a file,
unpacked into a staging folder (fleet.archive's guards) and put in place in one rename; a
download is packed into a file and streamed from it. Bodies obey `server.max_body_bytes`
like every other (413), an archive may unpack to at most `_UNPACK_FACTOR` times that, and a
transfer may take `TRANSFER_TIMEOUT_S` instead of the request deadline.

Every route needs `Authorization: Bearer <run token>` (fleet.tokens): 401 without a valid
one, 403 for a token of another run or of a run that is final (tokens expire with their
run), 404 for an unknown run or job or a file never saved. Errors use the one envelope.
Must not: run jobs, or serve anything outside the run's folders and the cache root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from conveyor.engine.artifacts import artifacts_dir
from conveyor.engine.cache import cache_root, cache_snapshot, publish_cache, staging_folder
from conveyor.engine.dotenv import DotenvError, checked_variables, dotenv_path, write_dotenv
from conveyor.fleet.archive import pack_folder, unpack_archive
from conveyor.fleet.tokens import load_fleet_key, verify
from conveyor.model import RunRecord, cache_key_problem
from conveyor.server.errors import ApiError
from conveyor.server.runreads import run_not_found
from conveyor.server.serialize import json_response
from conveyor.store.base import RunRecords
from conveyor.store.paths import is_valid_run_id, run_dir

__all__ = ["TRANSFER_TIMEOUT_S", "build_router"]

TRANSFER_TIMEOUT_S = 600.0
_UNPACK_FACTOR = 20
_WRITE_CHUNK_BYTES = 1 << 20
_GZIP = "application/gzip"


# ---------------------------------------------------------------- who may


async def _fleet_key(request: Request) -> bytes:
    state = request.app.state
    key: bytes | None = getattr(state, "fleet_key", None)
    if key is None:
        key = await asyncio.to_thread(load_fleet_key, state.home)
        state.fleet_key = key
    return key


async def _authorized_run(request: Request, run_id: str, job: str | None = None) -> RunRecord:
    """The run the bearer's token opens (module docstring), with `job` among its jobs."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    token = given.strip() if scheme.lower() == "bearer" else ""
    token_run = verify(await _fleet_key(request), token) if token else None
    if token_run is None:
        raise ApiError(
            401, "unauthorized", "Missing or wrong run token: send 'Authorization: Bearer "
            "<run token>' (the worker's task carries it).",
        )  # fmt: skip
    if token_run != run_id:
        raise ApiError(403, "forbidden", f"This run token is for another run, not {run_id!r}.")
    if not is_valid_run_id(run_id):
        raise run_not_found(run_id)
    store: RunRecords = request.app.state.store
    run = await asyncio.to_thread(store.get_run, run_id)
    if run is None:
        raise run_not_found(run_id)
    if run.status.is_final:
        raise ApiError(
            403,
            "run_token_expired",
            f"Run {run_id!r} is {run.status}: its run token expired with it.",
        )
    if job is not None and job not in {record.name for record in run.jobs}:
        raise ApiError(404, "job_not_found", f"Run {run_id!r} has no job {job!r}.")
    _allow_transfer_time(request)
    return run


def _allow_transfer_time(request: Request) -> None:
    deadline: asyncio.Timeout | None = getattr(request.state, "deadline", None)
    if deadline is not None and deadline.when() is not None:
        deadline.reschedule(asyncio.get_running_loop().time() + TRANSFER_TIMEOUT_S)


def _folder_of(request: Request, run_id: str) -> Path:
    home: Path = request.app.state.home
    return run_dir(home, run_id)


# ---------------------------------------------------------------- bodies in and out


def _new_file(folder: Path) -> IO[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    # Closed by the caller, which writes the body into it.
    return tempfile.NamedTemporaryFile(dir=folder, suffix=".tar.gz", delete=False)


async def _receive_file(request: Request, folder: Path) -> Path:
    """The request body streamed into a new file in `folder` (removed on failure)."""
    handle = await asyncio.to_thread(_new_file, folder)
    path = Path(handle.name)
    try:
        with handle:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= _WRITE_CHUNK_BYTES:
                    await asyncio.to_thread(handle.write, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(handle.write, bytes(pending))
    except BaseException:
        await asyncio.shield(asyncio.to_thread(path.unlink, True))
        raise
    return path


def _unpack_once(archive: Path, staging: Path, max_bytes: int) -> int:
    try:
        return unpack_archive(archive, staging, max_bytes=max_bytes)
    finally:
        archive.unlink(missing_ok=True)


async def _unpacked(request: Request, archive: Path, staging: Path) -> int:
    """`archive` unpacked into `staging` (BadArchive: 422 bad_archive), then deleted; the
    file count."""
    max_bytes = request.app.state.settings.server.max_body_bytes * _UNPACK_FACTOR
    return await asyncio.to_thread(_unpack_once, archive, staging, max_bytes)


def _packed(scratch: Path, pack: Callable[[Path], bool]) -> Path | None:
    """A new file under `scratch` that `pack(path)` filled; None when it had nothing."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch, suffix=".tar.gz")
    os.close(fd)
    path = Path(name)
    try:
        if pack(path):
            return path
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    path.unlink(missing_ok=True)
    return None


async def _send_archive(scratch: Path, pack: Callable[[Path], bool], missing: ApiError) -> Any:
    """Stream the archive `pack` writes (module docstring), deleting it once sent."""
    path = await asyncio.to_thread(_packed, scratch, pack)
    if path is None:
        raise missing
    return FileResponse(path, media_type=_GZIP, background=BackgroundTask(path.unlink, True))


def _swap_folder(staged: Path, dest: Path) -> None:
    """Put `staged` in place of `dest` in one rename; the old one is removed after."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = staged.with_name(staged.name + ".old")
    with contextlib.suppress(FileNotFoundError):
        dest.rename(old)
    staged.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- artifacts


async def get_artifacts(request: Request, run_id: str, job: str) -> Any:
    await _authorized_run(request, run_id, job)
    folder = _folder_of(request, run_id)
    source = artifacts_dir(folder, job)

    def pack(path: Path) -> bool:
        if not source.is_dir():
            return False
        pack_folder(source, path)
        return True

    missing = ApiError(404, "artifacts_not_found", f"Job {job!r} of run {run_id!r} saved none.")
    return await _send_archive(folder / ".transfers", pack, missing)


async def put_artifacts(request: Request, run_id: str, job: str) -> Response:
    await _authorized_run(request, run_id, job)
    transfers = _folder_of(request, run_id) / ".transfers"
    archive = await _receive_file(request, transfers)
    staging = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=transfers))
    try:
        files = await _unpacked(request, archive, staging / "data")
        dest = artifacts_dir(_folder_of(request, run_id), job)
        await asyncio.to_thread(_swap_folder, staging / "data", dest)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return json_response({"files": files})


# ---------------------------------------------------------------- dotenv


async def get_dotenv(request: Request, run_id: str, job: str) -> Response:
    await _authorized_run(request, run_id, job)
    path = dotenv_path(_folder_of(request, run_id), job)
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise ApiError(
            404, "dotenv_not_found", f"Job {job!r} of run {run_id!r} exported no dotenv variable."
        ) from None
    return Response(body, media_type="application/json")


async def put_dotenv(request: Request, run_id: str, job: str) -> Response:
    await _authorized_run(request, run_id, job)
    try:
        variables = checked_variables(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, DotenvError) as exc:
        message = str(exc) if isinstance(exc, DotenvError) else "the body is not JSON"
        raise ApiError(422, "invalid_dotenv", f"dotenv of job {job!r}: {message}.") from None
    path = dotenv_path(_folder_of(request, run_id), job)
    await asyncio.to_thread(write_dotenv, path, variables)
    return json_response({"variables": len(variables)})


# ---------------------------------------------------------------- caches


def _checked_key(key: str) -> str:
    problem = cache_key_problem(key)
    if problem is not None:
        raise ApiError(422, "invalid_cache_key", f"Cache key {key[:100]!r} {problem}.")
    return key


def _cache_root(request: Request, run_id: str) -> Path:
    return cache_root(request.app.state.home, _folder_of(request, run_id))


async def get_cache(request: Request, run_id: str, key: str) -> Any:
    await _authorized_run(request, run_id)
    root = _cache_root(request, run_id)
    key = _checked_key(key)

    def pack(path: Path) -> bool:
        with cache_snapshot(root, key) as folder:
            if folder is None:
                return False
            pack_folder(folder, path)
            return True

    missing = ApiError(404, "cache_not_found", f"No cache is saved under key {key!r}.")
    return await _send_archive(root / ".tmp", pack, missing)


async def put_cache(request: Request, run_id: str, key: str) -> Response:
    await _authorized_run(request, run_id)
    root = _cache_root(request, run_id)
    key = _checked_key(key)
    staging = await asyncio.to_thread(staging_folder, root)
    try:
        archive = await _receive_file(request, staging)
        files = await _unpacked(request, archive, staging / "data")
        if files:  # nothing matched on the worker: the older cache is kept, as locally
            await asyncio.to_thread(publish_cache, root, key, staging / "data")
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return json_response({"files": files})


def build_router() -> APIRouter:
    """The files API under /api/v1 (module docstring); the routes check run tokens."""
    router = APIRouter(prefix="/api/v1", tags=["run files"])
    jobs = "/runs/{run_id}/jobs/{job:path}"
    router.add_api_route(f"{jobs}/artifacts", get_artifacts, methods=["GET"])
    router.add_api_route(f"{jobs}/artifacts", put_artifacts, methods=["PUT"])
    router.add_api_route(f"{jobs}/dotenv", get_dotenv, methods=["GET"])
    router.add_api_route(f"{jobs}/dotenv", put_dotenv, methods=["PUT"])
    router.add_api_route("/runs/{run_id}/caches/{key}", get_cache, methods=["GET"])
    router.add_api_route("/runs/{run_id}/caches/{key}", put_cache, methods=["PUT"])
    return router
