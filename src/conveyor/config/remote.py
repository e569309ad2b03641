"""`include: remote` as configuration sees it: the RemoteFetcher Protocol. Pure.

Owns: what the GitLab loader needs from whoever fetches a remote include: the body at a URL,
or an IncludeFetchError whose message is the short reason (`HTTP 404`, `timeout after 10s`,
`larger than 1 MiB`), never the URL or a response body. The network implementation is an
adapter (`conveyor.outbound.remote.HttpRemoteFetcher`); callers of `load_pipeline` pass it in,
tests pass a fake (tests/fakes/remote_files.py).
Must not: do I/O or import an adapter: the core receives its fetcher, it never builds one.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RemoteFetcher"]


class RemoteFetcher(Protocol):
    """Fetches `include: remote` files. Synchronous: configuration is loaded synchronously."""

    def fetch(self, url: str) -> bytes:
        """The body at `url` (HTTP 200 only); raises IncludeFetchError with the reason."""
        ...
