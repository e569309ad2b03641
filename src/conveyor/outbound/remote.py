"""`include: remote` files over the outbound client: the RemoteFetcher of conveyor.config.

Owns: one GET per URL, bounded in every direction: a deadline of 10 s over the whole fetch
(connect, redirects and body together), a body of at most 1 MiB, at most 5 redirects,
http and https only, no credentials (the include entries refuse URLs with
`user:password@`; GitLab fetches remote includes without authentication). Every connection,
redirects included, goes through `outbound.guard.GuardedTransport`: a host that resolves to
a loopback, private, link-local, multicast, unspecified or reserved address is not fetched
unless the allow-list names it (`allow`: entries of `CONVEYOR_REMOTE_INCLUDE_ALLOW` and, on
the server, `[server] remote_include_allow`); the address checked is the address connected
to. CA settings of the environment apply; proxies do not (the check must see the address).
Failures become an IncludeFetchError whose message is the reason (`HTTP 404`, `timeout
after 10s`, `larger than 1 MiB`, `more than 5 redirects`, `cannot connect (ConnectError)`,
`resolves to a loopback address (…)`), never the URL or a response body.
Configuration is loaded synchronously and the client is async (one client, no sync twin),
so `fetch` runs it on an event loop of its own in a worker thread: it works the same from
a plain call and from code running inside an event loop.
Must not: parse anything (config.gitlab.includes does), or import httpx or asyncio before a
remote include is met: `conveyor validate` of a file without one stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.errors import IncludeFetchError, IncludeUnreachable

if TYPE_CHECKING:
    from conveyor.outbound.base import ClientPolicy, HttpClient

__all__ = [
    "ALLOW_ENV",
    "MAX_BODY_BYTES",
    "MAX_REDIRECTS",
    "TIMEOUT_S",
    "HttpRemoteFetcher",
    "allow_entries",
]

TIMEOUT_S = 10.0
MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
_ACCEPT = "application/yaml, text/yaml, text/plain, */*"
# The allow-list of the CLI (and of the server, with conveyor.toml's): comma-separated host
# names, addresses and networks. Also outbound.guard.ALLOW_ENV (not imported: httpx).
ALLOW_ENV = "CONVEYOR_REMOTE_INCLUDE_ALLOW"
_HOW_TO_ALLOW = (
    f"not fetched; name the host in {ALLOW_ENV} or [server] remote_include_allow to allow it"
)

OpenClient = Callable[["ClientPolicy", Sequence[str]], "HttpClient"]


def allow_entries(env: Mapping[str, str], extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The allow-list entries of `ALLOW_ENV` in `env` and `extra` (conveyor.toml)."""
    listed = (entry.strip() for entry in env.get(ALLOW_ENV, "").split(","))
    return tuple(entry for entry in (*listed, *extra) if entry)


def _open_outbound_client(policy: ClientPolicy, allow: Sequence[str]) -> HttpClient:
    from conveyor.addresses import parse_allow_list
    from conveyor.outbound.client import OutboundClient
    from conveyor.outbound.guard import GuardedTransport

    try:
        allowed = parse_allow_list(allow)
    except ValueError as exc:
        raise IncludeFetchError(f"allow-list entry {exc} ({ALLOW_ENV})") from None
    return OutboundClient(policy, transport=GuardedTransport(allowed))


def _too_large(limit_bytes: int) -> IncludeFetchError:
    if limit_bytes % (1024 * 1024) == 0:
        return IncludeFetchError(f"larger than {limit_bytes // (1024 * 1024)} MiB")
    return IncludeFetchError(f"larger than {limit_bytes} bytes")


class HttpRemoteFetcher:
    """config.RemoteFetcher over HTTP. `allow`: allow-list entries (`allow_entries`);
    `open_client` is the seam for the fake client."""

    def __init__(
        self,
        *,
        allow: Sequence[str] = (),
        timeout_s: float = TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
        open_client: OpenClient = _open_outbound_client,
    ) -> None:
        self.allow = tuple(allow)
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._open_client = open_client

    def fetch(self, url: str) -> bytes:
        """The body at `url` (status 200 only). Raises IncludeFetchError with the reason."""
        import asyncio  # only when a remote include is met
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="include-remote") as worker:
            return worker.submit(lambda: asyncio.run(self.fetch_async(url))).result()

    async def fetch_async(self, url: str) -> bytes:
        """`fetch` on the running event loop."""
        from conveyor.errors import (
            UpstreamAddressRefused,
            UpstreamRedirectError,
            UpstreamTimeout,
            UpstreamTooLarge,
            UpstreamUnreachable,
        )
        from conveyor.outbound.base import ClientPolicy

        policy = ClientPolicy(
            timeout_s=self.timeout_s,
            max_body_bytes=self.max_body_bytes,
            max_redirects=MAX_REDIRECTS,
            slots=1,
            headers={"Accept": _ACCEPT},
        )
        client = self._open_client(policy, self.allow)
        try:
            reply = await client.request("GET", url)
        except UpstreamTimeout:
            raise IncludeUnreachable(f"timeout after {self.timeout_s:g}s") from None
        except UpstreamTooLarge:
            raise _too_large(self.max_body_bytes) from None
        except UpstreamAddressRefused as exc:
            raise IncludeFetchError(f"{exc.reason} ({_HOW_TO_ALLOW})") from None
        except UpstreamRedirectError as exc:
            raise IncludeFetchError(exc.reason) from None
        except UpstreamUnreachable as exc:
            raise IncludeUnreachable(f"cannot connect ({exc.cause})") from None
        finally:
            await client.aclose()
        if reply.status_code != 200:
            raise IncludeFetchError(f"HTTP {reply.status_code}")
        return reply.body
