"""Fake GitLab, GitHub and Jenkins servers on loopback, speaking enough of each API for the
monitor (paths, auth headers, pagination, ETag / If-None-Match, updated_after, crumbs bound
to sessions) and able to misbehave on command, per repo: 502, 503, 429 + Retry-After, hang
past any deadline, reset the connection, HTML instead of JSON, truncated JSON, a 20 MB body,
invalid sha / ref, extra secret fields.
"""

from tests.fakes.upstreams.apis import (
    FAKE_GITHUB_TOKEN,
    FAKE_GITLAB_TOKEN,
    FAKE_JENKINS_TOKEN,
    FAKE_JENKINS_USER,
    FAKE_LEAKS,
    FakeUpstream,
    Fault,
)

__all__ = [
    "FAKE_GITHUB_TOKEN",
    "FAKE_GITLAB_TOKEN",
    "FAKE_JENKINS_TOKEN",
    "FAKE_JENKINS_USER",
    "FAKE_LEAKS",
    "FakeUpstream",
    "Fault",
]
