"""git.describe (event_from_checkout, compare_to diffs) against real git repositories made in
tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conveyor.config.gitlab import parse_gitlab
from conveyor.git.describe import (
    NULL_SHA,
    add_compare_changes,
    changes_lookup,
    changes_since_refs,
    event_from_checkout,
    repo_path_from_url,
    start_checkout_query,
)
from conveyor.model import Event, EventKind, Pipeline
from conveyor.plan import compare_to_refs

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV,
        timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def test_event_from_checkout_push(repo: Path) -> None:
    first = commit(repo, {"a.txt": "1", "docs/x.md": "x"}, "first")
    second = commit(repo, {"a.txt": "2", "src/b.py": "b"}, "second\n\nbody")
    event = event_from_checkout(repo, kind=EventKind.PUSH, variables={"K": "V"})
    assert event.kind is EventKind.PUSH
    assert event.ref == "main"
    assert event.sha == second
    assert event.before_sha == first
    assert event.message == "second\n\nbody"
    assert event.changed_files == ("a.txt", "src/b.py")
    assert event.files == ("a.txt", "docs/x.md", "src/b.py")
    assert event.repo == "app"
    assert event.default_branch == "main"
    assert dict(event.variables) == {"K": "V"}


def test_event_from_checkout_first_commit_lists_all_files(repo: Path) -> None:
    commit(repo, {"a.txt": "1", "b/c.txt": "2"}, "root")
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert event.before_sha is None
    assert event.changed_files == ("a.txt", "b/c.txt")


def test_event_from_checkout_tag_at_head(repo: Path) -> None:
    sha = commit(repo, {"a": "1"}, "one")
    git(repo, "tag", "v1.0")
    event = event_from_checkout(repo, kind=EventKind.TAG)
    assert (event.ref, event.sha) == ("v1.0", sha)
    assert event.changed_files == ("a",)


def test_event_from_checkout_given_ref_resolves_its_commit(repo: Path) -> None:
    first = commit(repo, {"a": "1"}, "one")
    git(repo, "tag", "v0")
    commit(repo, {"a": "2"}, "two")
    event = event_from_checkout(repo, kind=EventKind.TAG, ref="v0")
    assert (event.ref, event.sha, event.before_sha) == ("v0", first, None)


def test_event_from_checkout_other_events_have_no_changed_files(repo: Path) -> None:
    commit(repo, {"a": "1"}, "one")
    event = event_from_checkout(repo, kind=EventKind.SCHEDULE, ref="nightly", sha="f" * 40)
    assert event.changed_files is None
    assert (event.ref, event.sha) == ("nightly", "f" * 40)


def test_event_from_checkout_origin_and_default_branch(repo: Path, tmp_path: Path) -> None:
    commit(repo, {"a": "1"}, "one")
    git(repo, "remote", "add", "origin", "https://user:secret@gitlab.example.com/group/app.git")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert event.repo == "group/app"
    assert event.default_branch == "trunk"


def test_event_from_checkout_no_commits_yet(repo: Path) -> None:
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert (event.ref, event.sha, event.changed_files) == ("main", NULL_SHA, None)


def test_event_from_checkout_outside_git(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    event = event_from_checkout(folder, kind=EventKind.PUSH)
    assert (event.ref, event.sha, event.repo) == ("", NULL_SHA, "plain")
    assert (event.changed_files, event.files, event.default_branch) == (None, None, "main")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://user:tok@gitlab.com/group/sub/app.git", "group/sub/app"),
        ("ssh://git@host:2222/group/app.git", "group/app"),
        ("git@github.com:owner/repo.git", "owner/repo"),
        ("/srv/git/team/app.git", "team/app"),
        ("app", "app"),
    ],
)
def test_repo_path_from_url(url: str, path: str) -> None:
    assert repo_path_from_url(url) == path


def test_event_from_checkout_tag_without_tag_at_head_uses_branch(repo: Path) -> None:
    commit(repo, {"a": "1"}, "one")
    event = event_from_checkout(repo, kind=EventKind.TAG)
    assert event.ref == "main"


def test_event_from_checkout_merge_lists_changes_against_first_parent(repo: Path) -> None:
    commit(repo, {"a": "1"}, "one")
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, {"side.txt": "s"}, "side")
    git(repo, "checkout", "-q", "main")
    main_head = commit(repo, {"m.txt": "m"}, "main")
    git(repo, "merge", "-q", "--no-edit", "side")
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert event.before_sha == main_head
    assert event.changed_files == ("side.txt",)
    assert event.message == "Merge branch 'side'"


def test_event_from_checkout_keeps_unusual_file_names_verbatim(repo: Path) -> None:
    git(repo, "config", "log.showRoot", "false")  # the root commit's files still count
    commit(repo, {"d/x y.txt": "1", "é.txt": "2"}, "root")
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert event.changed_files == ("d/x y.txt", "é.txt")
    assert event.files == ("d/x y.txt", "é.txt")


def test_event_from_checkout_of_a_subdirectory_names_files_from_the_top(repo: Path) -> None:
    commit(repo, {"a": "1", "src/b.py": "b"}, "one")
    commit(repo, {"src/b.py": "c"}, "two")
    event = event_from_checkout(repo / "src", kind=EventKind.PUSH)
    assert (event.repo, event.ref) == ("app", "main")
    assert event.changed_files == ("src/b.py",)
    assert event.files == ("a", "src/b.py")


def test_event_from_checkout_given_sha_and_branch_ref(repo: Path) -> None:
    first = commit(repo, {"a": "1"}, "one")
    second = commit(repo, {"b": "2"}, "two")
    git(repo, "branch", "old", first)
    by_ref = event_from_checkout(repo, kind=EventKind.PUSH, ref="old")
    assert (by_ref.ref, by_ref.sha, by_ref.message, by_ref.changed_files) == (
        "old", first, "one", ("a",)
    )  # fmt: skip
    by_sha = event_from_checkout(repo, kind=EventKind.PUSH, sha=second)
    assert (by_sha.ref, by_sha.sha, by_sha.before_sha) == ("main", second, first)
    assert by_sha.changed_files == ("b",)


def test_event_from_checkout_detached_head_and_configured_default_branch(repo: Path) -> None:
    sha = commit(repo, {"a": "1"}, "one")
    git(repo, "config", "init.defaultBranch", "develop")
    git(repo, "checkout", "-q", "--detach")
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert (event.ref, event.sha, event.default_branch) == ("", sha, "develop")


def test_event_from_checkout_unknown_ref_falls_back_to_head(repo: Path) -> None:
    sha = commit(repo, {"a": "1"}, "one")
    event = event_from_checkout(repo, kind=EventKind.PUSH, ref="no-such-branch")
    assert (event.ref, event.sha, event.message) == ("no-such-branch", sha, "one")


def _branch_with_changes(repo: Path) -> str:
    """main: a.txt; feature (checked out): docs/x.md then src/b.py; main moves on after the
    fork (c.txt), which a three-dot diff must not report."""
    commit(repo, {"a.txt": "1"}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"docs/x.md": "x"}, "docs")
    head = commit(repo, {"src/b.py": "b"}, "code")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"c.txt": "main moved on"}, "later on main")
    git(repo, "checkout", "-q", "feature")
    git(repo, "tag", "v1", "main~1")
    return head


def test_changes_since_refs_diffs_from_the_merge_base(repo: Path) -> None:
    head = _branch_with_changes(repo)
    changes = changes_since_refs(repo, head, ["main", "refs/heads/main", "v1", "HEAD~1"])
    assert changes == {
        "main": ("docs/x.md", "src/b.py"),
        "refs/heads/main": ("docs/x.md", "src/b.py"),
        "v1": ("docs/x.md", "src/b.py"),
        "HEAD~1": ("src/b.py",),
    }


def test_changes_since_refs_leaves_out_refs_git_cannot_resolve(repo: Path) -> None:
    head = _branch_with_changes(repo)
    changes = changes_since_refs(repo, head, ["nope", "--output=/tmp/x", "", "main"])
    assert changes == {"main": ("docs/x.md", "src/b.py")}


def _gitlab_pipeline(compare_to: str) -> Pipeline:
    text = f"job:\n  script: x\n  rules:\n    - changes: {{paths: [a], compare_to: {compare_to}}}\n"
    return parse_gitlab(text, ".gitlab-ci.yml")


def with_compare_changes(directory: Path, pipeline: Pipeline, event: Event) -> Event:
    return add_compare_changes(directory, event, compare_to_refs(pipeline, event))


def test_add_compare_changes_fills_the_refs_the_pipeline_names(repo: Path) -> None:
    _branch_with_changes(repo)
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    filled = with_compare_changes(repo, _gitlab_pipeline("$CI_DEFAULT_BRANCH"), event)
    assert filled.changes_by_ref == {"main": ("docs/x.md", "src/b.py")}


def test_add_compare_changes_keeps_an_invalid_ref_out(repo: Path) -> None:
    _branch_with_changes(repo)
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    assert with_compare_changes(repo, _gitlab_pipeline("nope"), event).changes_by_ref == {}


def test_add_compare_changes_leaves_the_event_alone_without_compare_to(repo: Path) -> None:
    _branch_with_changes(repo)
    event = event_from_checkout(repo, kind=EventKind.PUSH)
    pipeline = parse_gitlab("job:\n  script: x\n  rules: [{changes: [a]}]\n", ".gitlab-ci.yml")
    assert with_compare_changes(repo, pipeline, event) is event


def test_add_compare_changes_outside_git_leaves_changes_unknown(tmp_path: Path) -> None:
    event = event_from_checkout(tmp_path, kind=EventKind.PUSH)
    assert with_compare_changes(tmp_path, _gitlab_pipeline("main"), event).changes_by_ref is None


def test_start_checkout_query_event_is_event_from_checkout(repo: Path) -> None:
    commit(repo, {"a.txt": "a"}, "first")
    git(repo, "tag", "v1")
    query = start_checkout_query(repo, kind=EventKind.TAG)
    expected = event_from_checkout(repo, kind=EventKind.TAG, variables={"K": "V"})
    assert expected == query.event({"K": "V"})
    assert (expected.ref, expected.files) == ("v1", ("a.txt",))


def test_changes_lookup_outside_git_is_unknown(tmp_path: Path) -> None:
    assert changes_lookup(tmp_path, NULL_SHA)(["main"]) is None


def test_changes_lookup_diffs_at_the_sha(repo: Path) -> None:
    head = _branch_with_changes(repo)
    assert changes_lookup(repo, head)(["main"]) == changes_since_refs(repo, head, ["main"])


def test_describe_gives_git_only_the_safe_environment(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A git setting git would obey if it saw it: the describing commands never see it.
    monkeypatch.setenv("GIT_DIR", str(repo / "nowhere"))
    commit(repo, {"a.txt": "a"}, "first")
    assert event_from_checkout(repo, kind=EventKind.PUSH).files == ("a.txt",)
