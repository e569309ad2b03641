"""A RemoteFetcher (conveyor.config.remote) that answers from a dict: no network.

Bodies (or IncludeFetchErrors) by URL; every URL asked for is recorded in `asked`.
"""

from __future__ import annotations

from conveyor.errors import IncludeFetchError

__all__ = ["FakeRemoteFetcher"]


class FakeRemoteFetcher:
    def __init__(self, bodies: dict[str, bytes | IncludeFetchError]) -> None:
        self.bodies = bodies
        self.asked: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.asked.append(url)
        body = self.bodies[url]
        if isinstance(body, IncludeFetchError):
            raise body
        return body
