"""One contract for config.remote.GitLabFiles, run against every implementation: the
in-memory fake and GitLabApiFiles (conveyor.outbound.gitlab_files) talking to a fake GitLab
API on 127.0.0.1. Then what only the adapter does: the token, the on-disk cache keyed by
content, the offline mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from conveyor.config.remote import GitLabFiles
from conveyor.errors import IncludeFetchError, IncludeUnreachable
from conveyor.outbound.gitlab_files import GitLabApiFiles
from tests.fakes.gitlab_files import FakeGitLabApi, FakeGitLabFiles

FILES = {
    ("group/templates", "ci/build.yml", "v1"): b"build:\n  script: echo v1\n",
    ("group/templates", "ci/build.yml", "HEAD"): b"build:\n  script: echo head\n",
}
TEMPLATES = {"Jobs/Lint.gitlab-ci.yml": b"lint:\n  script: echo lint\n"}


class Implementation(Protocol):
    def make(self) -> GitLabFiles: ...
    def go_away(self) -> None: ...


class Fake:
    def __init__(self, _tmp: Path) -> None:
        self.files = FakeGitLabFiles(dict(FILES), dict(TEMPLATES), host="127.0.0.1")

    def make(self) -> GitLabFiles:
        return self.files

    def go_away(self) -> None:
        self.files.reachable = False


class Api:
    def __init__(self, tmp: Path) -> None:
        self.api = FakeGitLabApi(dict(FILES), dict(TEMPLATES))
        self.cache = tmp / "cache"

    def make(self) -> GitLabFiles:
        return GitLabApiFiles(self.api.url, self.cache, timeout_s=5)

    def go_away(self) -> None:
        self.api.close()


@pytest.fixture(params=[Fake, Api], ids=["fake", "api"])
def implementation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Implementation]:
    made = request.param(tmp_path)
    yield made
    if isinstance(made, Api):
        made.api.close()


def test_project_file_at_a_ref_and_at_the_default_branch(implementation: Implementation) -> None:
    files = implementation.make()
    assert (
        files.project_file("group/templates", "ci/build.yml", "v1")
        == FILES[("group/templates", "ci/build.yml", "v1")]
    )
    assert (
        files.project_file("group/templates", "/ci/build.yml", None)
        == FILES[("group/templates", "ci/build.yml", "HEAD")]
    )


def test_template_by_name(implementation: Implementation) -> None:
    assert (
        implementation.make().template("Jobs/Lint.gitlab-ci.yml")
        == TEMPLATES["Jobs/Lint.gitlab-ci.yml"]
    )


def test_missing_file_and_template_are_http_404(implementation: Implementation) -> None:
    files = implementation.make()
    with pytest.raises(IncludeFetchError, match=r"^HTTP 404$"):
        files.project_file("group/templates", "nope.yml", "v1")
    with pytest.raises(IncludeFetchError, match=r"^HTTP 404$"):
        files.template("Nope.gitlab-ci.yml")


def test_host_is_the_instance_host(implementation: Implementation) -> None:
    assert implementation.make().host == "127.0.0.1"


def test_an_instance_gone_is_unreachable_for_what_was_never_fetched(
    implementation: Implementation,
) -> None:
    files = implementation.make()
    implementation.go_away()
    with pytest.raises(IncludeUnreachable):
        files.project_file("group/templates", "ci/build.yml", "v1")


# ---------------------------------------------------------------- the adapter only


def test_api_sends_the_token_and_refuses_without_it_naming_the_variable(tmp_path: Path) -> None:
    api = FakeGitLabApi(dict(FILES), {}, token="glpat-secret-123")
    try:
        with_token = GitLabApiFiles(api.url, tmp_path / "a", token="glpat-secret-123")
        assert with_token.project_file("group/templates", "ci/build.yml", "v1").startswith(b"b")
        without = GitLabApiFiles(api.url, tmp_path / "b")
        with pytest.raises(IncludeFetchError) as caught:
            without.project_file("group/templates", "ci/build.yml", "v1")
    finally:
        api.close()
    assert str(caught.value) == "HTTP 401 (check the token in CONVEYOR_GITLAB_TOKEN)"
    assert "glpat" not in str(caught.value)


def test_api_cache_serves_when_the_instance_is_gone_and_in_offline_mode(tmp_path: Path) -> None:
    api = FakeGitLabApi(dict(FILES), dict(TEMPLATES))
    cache = tmp_path / "cache"
    online = GitLabApiFiles(api.url, cache)
    body = online.project_file("group/templates", "ci/build.yml", "v1")
    online.template("Jobs/Lint.gitlab-ci.yml")
    api.close()
    assert online.project_file("group/templates", "ci/build.yml", "v1") == body
    offline = GitLabApiFiles("http://127.0.0.1:9", cache, offline=True)
    assert offline.template("Jobs/Lint.gitlab-ci.yml") == TEMPLATES["Jobs/Lint.gitlab-ci.yml"]
    with pytest.raises(IncludeUnreachable, match="offline, and it is not in the include cache"):
        offline.project_file("group/templates", "ci/build.yml", None)


def test_api_cache_is_keyed_by_content(tmp_path: Path) -> None:
    api = FakeGitLabApi(dict(FILES), {})
    try:
        files = GitLabApiFiles(api.url, tmp_path / "cache")
        files.project_file("group/templates", "ci/build.yml", "v1")
        files.project_file("group/templates", "ci/build.yml", "v1")  # same content: one object
        files.project_file("group/templates", "ci/build.yml", None)
    finally:
        api.close()
    import hashlib

    objects = sorted(p.name for p in (tmp_path / "cache" / "objects").iterdir())
    assert objects == sorted(hashlib.sha256(body).hexdigest() for body in FILES.values())
