"""include: remote — URLs checked, bodies merged, failures placed (a fake RemoteFetcher, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import textwrap

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.config.gitlab.findings import REMOTE_PROBLEM
from conveyor.config.gitlab.includes import match_include
from conveyor.errors import ConfigError, IncludeFetchError
from conveyor.model import Pipeline
from tests.fakes.remote_files import FakeRemoteFetcher

URL = "https://ci.example.test/templates/build.yml"
LOCAL = {"ci/local.yml": "local:\n  script: echo local\n"}


def _read(pattern: str) -> list[tuple[str, str]]:
    return [(path, LOCAL[path]) for path in match_include(pattern, LOCAL)]


def parse(text: str, fetch: FakeRemoteFetcher) -> Pipeline:
    text = textwrap.dedent(text) + "main:\n  script: echo main\n"
    return parse_gitlab(text, ".gitlab-ci.yml", _read, fetch=fetch)


def problems_of(text: str, fetch: FakeRemoteFetcher) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, fetch)
    return [str(problem) for problem in caught.value.problems]


def test_include_remote_merges_the_fetched_file() -> None:
    fetch = FakeRemoteFetcher({URL: b"build:\n  stage: build\n  script: echo build\n"})
    pipeline = parse(f"include:\n  - remote: {URL}\n", fetch)
    assert sorted(job.name for job in pipeline.jobs) == ["build", "main"]
    assert fetch.asked == [URL]


def test_include_url_string_is_a_remote_include() -> None:
    fetch = FakeRemoteFetcher({URL: b"build:\n  script: echo build\n"})
    pipeline = parse(f"include: {URL}\n", fetch)
    assert sorted(job.name for job in pipeline.jobs) == ["build", "main"]


def test_include_remote_marks_name_the_url_without_query() -> None:
    url = URL + "?private_token=s3cr3t"
    fetch = FakeRemoteFetcher({url: b"build:\n  script: echo build\n  scirpt: echo\n"})
    problems = problems_of(f"include:\n  - remote: '{url}'\n", fetch)
    # The fetched file's text (here the keyword) is never shown: where, and a fixed reason.
    assert problems == [f"{URL}:3:3: {REMOTE_PROBLEM}"]


def test_include_remote_same_url_twice_is_fetched_once() -> None:
    fetch = FakeRemoteFetcher({URL: b"build:\n  script: echo build\n"})
    parse(f"include:\n  - {URL}\n  - remote: {URL}\n", fetch)
    assert fetch.asked == [URL]


def test_include_remote_fetch_failure_names_include_url_and_reason() -> None:
    url = URL + "?token=s3cr3t"
    fetch = FakeRemoteFetcher({url: IncludeFetchError("HTTP 404")})
    problems = problems_of(f"include:\n  - remote: '{url}'\n", fetch)
    assert problems == [f".gitlab-ci.yml:2:13: include:remote {URL}: HTTP 404"]


def test_include_remote_not_yaml_is_placed_at_the_include() -> None:
    fetch = FakeRemoteFetcher({URL: b"build: [unclosed\n"})
    problems = problems_of(f"include: {URL}\n", fetch)
    assert len(problems) == 1
    assert problems[0].startswith(
        f".gitlab-ci.yml:1:10: include:remote {URL}: not YAML: while parsing a flow sequence"
    )


def test_include_remote_not_utf8_is_an_error() -> None:
    fetch = FakeRemoteFetcher({URL: b"\xff\xfe"})
    problems = problems_of(f"include: {URL}\n", fetch)
    assert problems == [
        f".gitlab-ci.yml:1:10: include:remote {URL}: not UTF-8 text (invalid start byte at byte 0)"
    ]


def test_include_remote_integrity_is_checked() -> None:
    body = b"build:\n  script: echo build\n"
    good = "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    bad = "sha256-" + base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    fetch = FakeRemoteFetcher({URL: body})
    assert len(parse(f"include:\n  - remote: {URL}\n    integrity: '{good}'\n", fetch).jobs) == 2
    problems = problems_of(f"include:\n  - remote: {URL}\n    integrity: '{bad}'\n", fetch)
    assert problems == [
        f".gitlab-ci.yml:2:13: include:remote {URL}: integrity check failed: the file's hash "
        f"is {good}"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://bob:pw@ci.example.test/a.yml", "must not contain credentials"),
        ("https://token@ci.example.test/a.yml", "must not contain credentials"),
        ("ftp://ci.example.test/a.yml", "must be an http:// or https:// URL"),
        ("https:///a.yml", "the URL has no host"),
    ],
)
def test_include_remote_refuses_bad_urls(url: str, message: str) -> None:
    fetch = FakeRemoteFetcher({})
    problems = problems_of(f"include:\n  - remote: '{url}'\n", fetch)
    assert len(problems) == 1
    assert message in problems[0]
    assert problems[0].startswith(".gitlab-ci.yml:2:13: ")
    assert "pw" not in problems[0]
    assert "token" not in problems[0]
    assert fetch.asked == []


def test_include_local_inside_a_remote_file_is_refused() -> None:
    fetch = FakeRemoteFetcher({URL: b"include: ci/local.yml\nbuild:\n  script: echo build\n"})
    problems = problems_of(f"include: {URL}\n", fetch)
    assert problems == [
        f'{URL}:1:10: include "ci/local.yml": include:local in a remote file has no project '
        "to be read from (GitLab refuses it too); include it with its full URL"
    ]


def test_include_remote_inside_a_remote_file_is_fetched() -> None:
    nested = "https://ci.example.test/templates/nested.yml"
    fetch = FakeRemoteFetcher(
        {
            URL: f"include: {nested}\nbuild:\n  script: echo build\n".encode(),
            nested: b"nested:\n  script: echo nested\n",
        }
    )
    pipeline = parse(f"include: {URL}\n", fetch)
    assert sorted(job.name for job in pipeline.jobs) == ["build", "main", "nested"]


def test_include_remote_cycle_is_reported() -> None:
    fetch = FakeRemoteFetcher({URL: f"include: {URL}\nbuild:\n  script: echo build\n".encode()})
    problems = problems_of(f"include: {URL}\n", fetch)
    assert problems == [
        f"{URL}:1:10: include cycle: .gitlab-ci.yml -> {URL} -> {URL} "
        "(remove one of these includes)"
    ]
