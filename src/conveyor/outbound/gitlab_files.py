"""`include: project`, `template` and `component` files from a GitLab instance, cached.

Owns: GitLabApiFiles, the config.remote.GitLabFiles of a configured instance: a project's
file at a ref through the API (`GET /api/v4/projects/:path/repository/files/:file/raw?ref=`,
the token, if any, in the PRIVATE-TOKEN header), a template through
`GET /api/v4/templates/gitlab_ci_ymls/:name` (its `content`), each GET through the one
outbound client with the limits of remote includes (10 s, 1 MiB). Every body fetched is
kept in an on-disk cache keyed by its content (`objects/SHA256`, an `index.json` from each
request to its object): when the instance cannot be reached, or in the offline mode, the
cached copy is used; without one the file is unavailable (IncludeUnreachable). The
instance comes from the environment (`from_env`): CONVEYOR_GITLAB_URL, the token from
CONVEYOR_GITLAB_TOKEN (never written anywhere, never in a message), the cache in
CONVEYOR_INCLUDE_CACHE or the user's cache folder.
Must not: parse YAML (config.gitlab.include_gitlab does) or put a URL, token or response
body into an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from conveyor.errors import IncludeFetchError, IncludeUnreachable

if TYPE_CHECKING:
    from conveyor.outbound.base import ClientPolicy, HttpClient

__all__ = ["TIMEOUT_S", "TOKEN_ENV", "URL_ENV", "GitLabApiFiles", "from_env"]

URL_ENV = "CONVEYOR_GITLAB_URL"
TOKEN_ENV = "CONVEYOR_GITLAB_TOKEN"  # noqa: S105 - the name of a variable, not a secret
CACHE_ENV = "CONVEYOR_INCLUDE_CACHE"
TIMEOUT_S = 10.0
MAX_BODY_BYTES = 1024 * 1024

OpenClient = Callable[["ClientPolicy"], "HttpClient"]


def _open_outbound_client(policy: ClientPolicy) -> HttpClient:
    from conveyor.outbound.client import OutboundClient

    return OutboundClient(policy)


class GitLabApiFiles:
    """GitLabFiles over one instance's API with an on-disk cache in `cache_dir`."""

    def __init__(
        self,
        base_url: str,
        cache_dir: Path,
        *,
        token: str = "",
        offline: bool = False,
        timeout_s: float = TIMEOUT_S,
        open_client: OpenClient = _open_outbound_client,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_dir = cache_dir
        self.offline = offline
        self.timeout_s = timeout_s
        self._token = token
        self._open_client = open_client

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def project_file(self, project: str, path: str, ref: str | None) -> bytes:
        url = (
            f"{self.base_url}/api/v4/projects/{quote(project, safe='')}/repository/files/"
            f"{quote(path.lstrip('/'), safe='')}/raw?ref={quote(ref or 'HEAD', safe='')}"
        )
        return self._cached(f"project\0{project}\0{path}\0{ref or ''}", url, raw=True)

    def template(self, name: str) -> bytes:
        key = name.removesuffix(".gitlab-ci.yml")
        url = f"{self.base_url}/api/v4/templates/gitlab_ci_ymls/{quote(key, safe='')}"
        return self._cached(f"template\0{name}", url, raw=False)

    # ------------------------------------------------------------------ the cache

    def _cached(self, key: str, url: str, *, raw: bool) -> bytes:
        if not self.offline:
            try:
                body = self._get(url)
            except IncludeUnreachable:
                pass  # the cached copy, if any, below
            else:
                body = body if raw else _template_content(body)
                self._store(key, body)
                return body
        found = self._load(key)
        if found is None:
            why = "offline" if self.offline else "the GitLab instance cannot be reached"
            raise IncludeUnreachable(f"{why}, and it is not in the include cache")
        return found

    def _index(self) -> dict[str, str]:
        try:
            data = json.loads((self.cache_dir / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _load(self, key: str) -> bytes | None:
        digest = self._index().get(key)
        if not isinstance(digest, str):
            return None
        try:
            body = (self.cache_dir / "objects" / digest).read_bytes()
        except OSError:
            return None
        return body if hashlib.sha256(body).hexdigest() == digest else None

    def _store(self, key: str, body: bytes) -> None:
        digest = hashlib.sha256(body).hexdigest()
        objects = self.cache_dir / "objects"
        objects.mkdir(parents=True, exist_ok=True)
        if not (objects / digest).exists():
            _write_atomically(objects / digest, body)
        index = self._index()
        index[key] = digest
        _write_atomically(self.cache_dir / "index.json", json.dumps(index).encode())

    # ------------------------------------------------------------------ HTTP

    def _get(self, url: str) -> bytes:
        import asyncio  # only when such an include is met
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="include-gitlab") as worker:
            return worker.submit(lambda: asyncio.run(self._get_async(url))).result()

    async def _get_async(self, url: str) -> bytes:
        from conveyor.errors import (
            UpstreamRedirectError,
            UpstreamTimeout,
            UpstreamTooLarge,
            UpstreamUnreachable,
        )
        from conveyor.outbound.base import ClientPolicy

        headers = {"PRIVATE-TOKEN": self._token} if self._token else {}
        policy = ClientPolicy(
            timeout_s=self.timeout_s,
            max_body_bytes=MAX_BODY_BYTES,
            max_redirects=3,
            slots=1,
            headers=headers,
        )
        client = self._open_client(policy)
        try:
            reply = await client.request("GET", url)
        except UpstreamTimeout:
            raise IncludeUnreachable(f"timeout after {self.timeout_s:g}s") from None
        except UpstreamUnreachable as exc:
            raise IncludeUnreachable(f"cannot connect ({exc.cause})") from None
        except UpstreamTooLarge:
            raise IncludeFetchError("larger than 1 MiB") from None
        except UpstreamRedirectError as exc:
            raise IncludeFetchError(exc.reason) from None
        finally:
            await client.aclose()
        if reply.status_code in (401, 403):
            raise IncludeFetchError(f"HTTP {reply.status_code} (check the token in {TOKEN_ENV})")
        if reply.status_code >= 500:
            raise IncludeUnreachable(f"HTTP {reply.status_code} from the GitLab instance")
        if reply.status_code != 200:
            raise IncludeFetchError(f"HTTP {reply.status_code}")
        return reply.body


def _template_content(body: bytes) -> bytes:
    try:
        content = json.loads(body).get("content")
    except (ValueError, AttributeError):
        content = None
    if not isinstance(content, str):
        raise IncludeFetchError("the template answer has no content")
    return content.encode("utf-8")


def _write_atomically(path: Path, data: bytes) -> None:
    import tempfile  # only when something is cached

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cache_dir_from(env: Mapping[str, str]) -> Path:
    """CONVEYOR_INCLUDE_CACHE, else `$XDG_CACHE_HOME/conveyor/includes`, else
    `~/.cache/conveyor/includes`: one cache per user, shared by every project."""
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "conveyor" / "includes"


def from_env(env: Mapping[str, str], *, offline: bool) -> GitLabApiFiles | None:
    """The instance CONVEYOR_GITLAB_URL names (None when unset), its token from
    CONVEYOR_GITLAB_TOKEN, its cache where `cache_dir_from` says."""
    url = env.get(URL_ENV, "").strip()
    if not url:
        return None
    return GitLabApiFiles(url, cache_dir_from(env), token=env.get(TOKEN_ENV, ""), offline=offline)
