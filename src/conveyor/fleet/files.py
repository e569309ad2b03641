"""The worker's side of the files API (server.runfiles): one run's artifacts, dotenv
variables and caches, fetched before a job and sent after it.

`RunFiles` speaks the routes over conveyor's one HTTP client (outbound), with the run token
as a bearer token; archives are fleet.archive's tar.gz. Each call is retried on broken
connections, timeouts and 5xx/429 answers with exponential backoff (outbound.retry), long
enough (`TRANSFER_RETRY`: up to 2 minutes) that a server restarted mid-job does not lose
the upload; a 404 is "nothing saved", any other answer is a `RunFilesError` naming the
route's purpose and the status, never the URL, token or body. Bodies are held in memory up
to the client's cap (the server refuses uploads over its `server.max_body_bytes`).

`RemoteCaches` is engine.cache's CacheStore over the API: restore downloads the first key
the server has and copies it into the workspace as a local restore does; save collects the
matching files and uploads them. A cache that cannot be moved is not a job failure (as in
GitLab): the store keeps a warning that the host writes to the job's log afterwards.
Must not: run jobs, or touch folders other than those it is given.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import orjson

from conveyor.engine.artifacts import collect_artifacts, restore_artifacts
from conveyor.errors import ConveyorError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from conveyor.fleet.archive import pack_folder, unpack_archive
from conveyor.model import Artifacts
from conveyor.outbound.base import ClientPolicy, HttpClient, Reply
from conveyor.outbound.retry import RetryPolicy, retry_call

__all__ = [
    "TRANSFER_RETRY",
    "RemoteCaches",
    "RunFiles",
    "RunFilesError",
    "files_policy",
]

TRANSFER_RETRY = RetryPolicy(
    max_attempts=12, max_total_s=120.0, initial_wait_s=0.5, max_wait_s=15.0
)
MAX_DOWNLOAD_BYTES = 1 << 30
_UNPACK_FACTOR = 20


def files_policy(timeout_s: float = 300.0) -> ClientPolicy:
    """The files client: a deadline per transfer, no redirects (the token would follow)."""
    return ClientPolicy(
        timeout_s=timeout_s,
        max_body_bytes=MAX_DOWNLOAD_BYTES,
        max_redirects=0,
        headers={"User-Agent": "conveyor-worker"},
    )


class RunFilesError(UpstreamError):
    """The server refused or kept failing a transfer (what, and the last status)."""

    code = "run_files_failed"


class _Busy(Exception):
    """A 5xx or 429 answer: worth another attempt."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"server answered {status_code}")
        self.status_code = status_code


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, _Busy | UpstreamUnreachable | UpstreamTimeout)


class RunFiles:
    """The files API of one run (module docstring). `server_url`: the server's base URL;
    `token`: the run's token; `http`: the client (closed by its owner)."""

    def __init__(
        self,
        server_url: str,
        token: str,
        run_id: str,
        *,
        http: HttpClient,
        retry: RetryPolicy = TRANSFER_RETRY,
    ) -> None:
        self._base = f"{server_url.rstrip('/')}/api/v1/runs/{quote(run_id, safe='')}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http = http
        self._retry = retry

    # ------------------------------------------------------------ artifacts

    async def fetch_artifacts(self, job: str, dest: Path) -> int | None:
        """Unpack `job`'s artifacts into `dest`; the file count, None when it saved none."""
        body = await self._get(self._job_url(job, "artifacts"), f"artifacts of {job}")
        if body is None:
            return None
        return await asyncio.to_thread(_unpack_bytes, body, dest)

    async def send_artifacts(self, job: str, folder: Path) -> int:
        """Send the files under `folder` as `job`'s artifacts; the file count."""
        body, count = await asyncio.to_thread(_pack_bytes, folder)
        await self._put(self._job_url(job, "artifacts"), body, f"artifacts of {job}")
        return count

    # ------------------------------------------------------------ dotenv

    async def fetch_dotenv(self, job: str) -> dict[str, str] | None:
        """`job`'s dotenv variables, None when it exported none."""
        body = await self._get(self._job_url(job, "dotenv"), f"dotenv of {job}")
        if body is None:
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise RunFilesError(f"files API: dotenv of {job}: the server sent no JSON object")
        return {str(key): str(value) for key, value in data.items()}

    async def send_dotenv(self, job: str, variables: Mapping[str, str]) -> None:
        """Make `variables` `job`'s dotenv variables (none: it exported none)."""
        body = orjson.dumps(dict(variables))
        await self._put(self._job_url(job, "dotenv"), body, f"dotenv of {job}")

    # ------------------------------------------------------------ caches

    async def fetch_cache(self, key: str, dest: Path) -> int | None:
        """Unpack the cache of `key` into `dest`; the file count, None when none is saved."""
        body = await self._get(self._cache_url(key), f"cache {key!r}")
        if body is None:
            return None
        return await asyncio.to_thread(_unpack_bytes, body, dest)

    async def send_cache(self, key: str, folder: Path) -> int:
        """Save the files under `folder` as the cache of `key`; the file count."""
        body, count = await asyncio.to_thread(_pack_bytes, folder)
        await self._put(self._cache_url(key), body, f"cache {key!r}")
        return count

    # ------------------------------------------------------------ the wire

    def _job_url(self, job: str, what: str) -> str:
        return f"{self._base}/jobs/{quote(job, safe='')}/{what}"

    def _cache_url(self, key: str) -> str:
        return f"{self._base}/caches/{quote(key, safe='')}"

    async def _get(self, url: str, what: str) -> bytes | None:
        reply = await self._send("GET", url, None, what)
        return None if reply.status_code == 404 else reply.body

    async def _put(self, url: str, body: bytes, what: str) -> None:
        await self._send("PUT", url, body, what)

    async def _send(self, method: str, url: str, body: bytes | None, what: str) -> Reply:
        async def attempt() -> Reply:
            reply = await self._http.request(method, url, headers=self._headers, content=body)
            if reply.status_code >= 500 or reply.status_code == 429:
                raise _Busy(reply.status_code)
            return reply

        try:
            reply = await retry_call(attempt, self._retry, on=_is_retryable)
        except _Busy as busy:
            raise RunFilesError(
                f"files API: {what}: the server kept answering {busy.status_code} "
                "(is it overloaded or restarting?)"
            ) from None
        except UpstreamError as error:
            raise RunFilesError(f"files API: {what}: {error} (is the server reachable?)") from None
        if reply.status_code < 300 or (method == "GET" and reply.status_code == 404):
            return reply
        raise RunFilesError(f"files API: {what}: the server answered {reply.status_code}")


def _pack_bytes(folder: Path) -> tuple[bytes, int]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "files.tar.gz"
        count = pack_folder(folder, path)
        return path.read_bytes(), count


def _unpack_bytes(body: bytes, dest: Path) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "files.tar.gz"
        path.write_bytes(body)
        limit = max(len(body), 1 << 20) * _UNPACK_FACTOR
        return unpack_archive(path, dest, max_bytes=limit)


class RemoteCaches:
    """engine.cache's CacheStore over the files API (module docstring); `scratch` holds
    what is in transit. `warnings` collects what went wrong, for the job's log."""

    def __init__(self, files: RunFiles, scratch: Path) -> None:
        self.files = files
        self.scratch = scratch
        self.warnings: list[str] = []

    async def restore(self, keys: Sequence[str], workspace: Path) -> tuple[str, int] | None:
        for key in keys:
            staging = await asyncio.to_thread(self._staging)
            try:
                if await self.files.fetch_cache(key, staging) is not None:
                    count = await asyncio.to_thread(restore_artifacts, [staging], workspace)
                    return key, count
            except ConveyorError as error:  # the server's trouble, or a bad archive
                self.warnings.append(f"cache {key!r}: not restored ({error})")
                return None
            finally:
                await asyncio.to_thread(shutil.rmtree, staging, True)
        return None

    async def save(self, key: str, workspace: Path, paths: Sequence[str]) -> int:
        staging = await asyncio.to_thread(self._staging)
        try:
            saved = await asyncio.to_thread(
                collect_artifacts, workspace, Artifacts(paths=tuple(paths)), staging
            )
            if not saved:
                return 0
            return await self.files.send_cache(key, staging)
        except ConveyorError as error:
            self.warnings.append(f"cache {key!r}: not saved ({error})")
            return 0
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _staging(self) -> Path:
        self.scratch.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.scratch))
