"""Fetched includes as configuration sees them: the RemoteFetcher (`include: remote`) and
GitLabFiles (`project`, `template`, `component` from a GitLab instance) Protocols. Pure.

Owns: what the GitLab loader needs from whoever fetches a remote include: the body at a URL,
or an IncludeFetchError whose message is the short reason (`HTTP 404`, `timeout after 10s`,
`larger than 1 MiB`), never the URL or a response body. The network implementation is an
adapter (`conveyor.outbound.remote.HttpRemoteFetcher`); callers of `load_pipeline` pass it in,
tests pass a fake (tests/fakes/remote_files.py). GitLabFiles likewise: the adapter is
`conveyor.outbound.gitlab_files.GitLabApiFiles` (the instance's API, an on-disk cache), the
fake tests/fakes/gitlab_files.py; an IncludeUnreachable means "cannot be had now" (the
include is then unavailable), any other IncludeFetchError is the include's own error.
`is_offline` reads the offline switch from the environment mapping it is given.
Must not: do I/O or import an adapter: the core receives its fetcher, it never builds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["OFFLINE_ENV", "GitLabFiles", "RemoteFetcher", "is_offline"]

OFFLINE_ENV = "CONVEYOR_OFFLINE"  # 1/true/yes: fetch no include (docs/gitlab-compat.md)


def is_offline(env: Mapping[str, str]) -> bool:
    """Whether `env` asks for the offline mode: no include is fetched, every include that
    would be is unavailable (a warning; the jobs needing it are left out)."""
    return env.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


class RemoteFetcher(Protocol):
    """Fetches `include: remote` files. Synchronous: configuration is loaded synchronously."""

    def fetch(self, url: str) -> bytes:
        """The body at `url` (HTTP 200 only); raises IncludeFetchError with the reason."""
        ...


class GitLabFiles(Protocol):
    """Files of one GitLab instance, for `include: project`, `template` and `component`."""

    @property
    def host(self) -> str:
        """The instance's host name (`gitlab.gnome.org`): components name their host."""
        ...

    def project_file(self, project: str, path: str, ref: str | None) -> bytes:
        """The file at `path` of project `project` (full path) at `ref` (None: the default
        branch); raises IncludeFetchError (IncludeUnreachable: cannot be had now)."""
        ...

    def template(self, name: str) -> bytes:
        """The instance's CI/CD template `name` (`Jobs/Build.gitlab-ci.yml`)."""
        ...
