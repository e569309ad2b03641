"""One `Git` conformance suite, run against GitCli (the git program, on real repositories
made in tmp_path with tests/fakes/git_repos.GitRepo) and FakeGit (the same history kept in
memory), so the fake other tests rely on behaves like git."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from conveyor.git.adapter import GitCli
from conveyor.git.base import Git, GitFailed
from conveyor.git.policy import NULL_SHA
from conveyor.model import EventKind
from tests.fakes.git import FakeGit
from tests.fakes.git_repos import GitRepo


class Repo(Protocol):
    """What both GitRepo and FakeRepo offer to build a history."""

    path: Path

    @property
    def clone_url(self) -> str: ...
    def commit(self, files: dict[str, str], message: str = "change") -> str: ...
    def head(self, ref: str = "HEAD") -> str: ...
    def branch(self, name: str) -> None: ...
    def tag(self, name: str, message: str = "release") -> str: ...


@dataclass
class World:
    git: Git
    create: Callable[[Path, dict[str, str] | None], Repo]


@pytest.fixture(params=["git", "fake"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "git":
        return World(GitCli(), GitRepo.create)
    fake = FakeGit()
    return World(fake, fake.create)


async def test_git_head_commit_is_the_last_commit(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1"})
    second = repo.commit({"b.txt": "2"})
    assert second == await world.git.head_commit(tmp_path / "app")


async def test_git_head_commit_outside_git_is_none(world: World, tmp_path: Path) -> None:
    assert await world.git.head_commit(tmp_path) is None


async def test_git_head_commit_before_the_first_commit_is_none(
    world: World, tmp_path: Path
) -> None:
    world.create(tmp_path / "app", None)
    assert await world.git.head_commit(tmp_path / "app") is None


async def test_git_describe_push_names_commit_parent_and_files(
    world: World, tmp_path: Path
) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1", "docs/x.md": "x"})
    first = repo.head()
    second = repo.commit({"a.txt": "2"}, "second")
    event = await world.git.describe(tmp_path / "app", kind=EventKind.PUSH, variables={"K": "V"})
    expected = (EventKind.PUSH, "main", second, first, "second", ("a.txt",))
    actual = (event.kind, event.ref, event.sha, event.before_sha, event.message)
    assert expected == (*actual, event.changed_files)
    assert (event.files, event.repo, event.variables) == (("a.txt", "docs/x.md"), "app", {"K": "V"})


async def test_git_describe_other_events_have_no_changed_files(
    world: World, tmp_path: Path
) -> None:
    world.create(tmp_path / "app", {"a.txt": "1"})
    event = await world.git.describe(tmp_path / "app", kind=EventKind.MANUAL)
    assert event.changed_files is None


async def test_git_describe_tag_at_head(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1"})
    sha = repo.tag("v1")
    event = await world.git.describe(tmp_path / "app", kind=EventKind.TAG)
    assert (event.ref, event.sha) == ("v1", sha)


async def test_git_describe_outside_git(world: World, tmp_path: Path) -> None:
    event = await world.git.describe(tmp_path, kind=EventKind.PUSH)
    assert (event.ref, event.sha, event.changed_files, event.files) == ("", NULL_SHA, None, None)


async def test_git_untracked_files_are_the_files_not_committed(
    world: World, tmp_path: Path
) -> None:
    world.create(tmp_path / "app", {"a.txt": "1"})
    (tmp_path / "app" / "new.txt").write_text("n")
    (tmp_path / "app" / "out").mkdir()
    (tmp_path / "app" / "out" / "b.bin").write_text("b")
    assert await world.git.untracked_files(tmp_path / "app") == ("new.txt", "out/b.bin")


async def test_git_untracked_files_outside_git_fail(world: World, tmp_path: Path) -> None:
    with pytest.raises(GitFailed):
        await world.git.untracked_files(tmp_path)


async def test_git_compare_changes_diff_from_the_merge_base(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1"})
    repo.branch("feature")
    repo.commit({"docs/x.md": "x"})
    head = repo.commit({"src/b.py": "b"})
    changes = await world.git.compare_changes(tmp_path / "app", head, ["main", "nope", "--x"])
    assert changes == {"main": ("docs/x.md", "src/b.py")}


async def test_git_merge_base_of_a_branch_and_a_commit(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1"})
    base = repo.head()
    repo.branch("feature")
    head = repo.commit({"src/b.py": "b"})
    assert await world.git.merge_base(tmp_path / "app", "main", head) == base
    assert await world.git.merge_base(tmp_path / "app", "nope", head) is None
    assert await world.git.merge_base(tmp_path / "app", "--x", head) is None


async def test_git_mirror_holds_the_remote_commits(world: World, tmp_path: Path) -> None:
    remote = world.create(tmp_path / "remote", {"a.txt": "1", "b/c.txt": "2"})
    mirror = tmp_path / "mirrors" / "app.git"
    await world.git.clone_mirror(remote.clone_url, mirror, auth=None)
    assert await world.git.has_commit(mirror, remote.head())
    assert await world.git.list_files(mirror, remote.head()) == ("a.txt", "b/c.txt")


async def test_git_clone_of_an_unknown_remote_fails(world: World, tmp_path: Path) -> None:
    with pytest.raises(GitFailed, match="git clone failed"):
        await world.git.clone_mirror(str(tmp_path / "nowhere"), tmp_path / "m.git", auth=None)


async def test_git_fetch_brings_new_commits(world: World, tmp_path: Path) -> None:
    remote = world.create(tmp_path / "remote", {"a.txt": "1"})
    mirror = tmp_path / "app.git"
    await world.git.clone_mirror(remote.clone_url, mirror, auth=None)
    newer = remote.commit({"a.txt": "2"})
    assert not await world.git.has_commit(mirror, newer)
    await world.git.fetch_mirror(mirror, auth=None)
    assert await world.git.has_commit(mirror, newer)


async def test_git_resolve_ref_finds_branches_and_tags(world: World, tmp_path: Path) -> None:
    remote = world.create(tmp_path / "remote", {"a.txt": "1"})
    tagged = remote.tag("v1")
    main = remote.commit({"a.txt": "2"})
    mirror = tmp_path / "app.git"
    await world.git.clone_mirror(remote.clone_url, mirror, auth=None)
    found = [await world.git.resolve_ref(mirror, ref) for ref in ("main", "v1", "nope")]
    assert found == [main, tagged, None]


async def test_git_commit_message_is_the_whole_message(world: World, tmp_path: Path) -> None:
    remote = world.create(tmp_path / "remote", {"a.txt": "1"})
    sha = remote.commit({"a.txt": "2"}, "Fix the build\n\nNothing to test here [skip ci]")
    mirror = tmp_path / "app.git"
    await world.git.clone_mirror(remote.clone_url, mirror, auth=None)
    message = await world.git.commit_message(mirror, sha)
    assert message == "Fix the build\n\nNothing to test here [skip ci]"
    assert await world.git.commit_message(mirror, "e" * 40) is None
    assert await world.git.commit_message(mirror, "--all") is None


async def test_git_worktree_is_the_exact_commit(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "one"})
    first = repo.head()
    repo.commit({"a.txt": "two", "b.txt": "b"})
    dest = tmp_path / "work" / "run1"
    await world.git.add_worktree(tmp_path / "app", first, dest)
    assert (dest / "a.txt").read_text() == "one"
    assert not (dest / "b.txt").exists()
    await world.git.remove_worktree(tmp_path / "app", dest)
    assert not dest.exists()


async def test_git_worktree_of_an_unknown_commit_fails(world: World, tmp_path: Path) -> None:
    world.create(tmp_path / "app", {"a.txt": "one"})
    with pytest.raises(GitFailed):
        await world.git.add_worktree(tmp_path / "app", "e" * 40, tmp_path / "w")


async def test_git_prune_forgets_a_deleted_worktree(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "one"})
    dest = tmp_path / "w"
    await world.git.add_worktree(tmp_path / "app", repo.head(), dest)
    for path in sorted(dest.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    dest.rmdir()
    await world.git.prune_worktrees(tmp_path / "app")
    with pytest.raises(GitFailed):
        await world.git.remove_worktree(tmp_path / "app", dest)


async def test_git_changed_files_between_commits(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1", "b.txt": "1"})
    before = repo.head()
    after = repo.commit({"b.txt": "2", "c/d.txt": "new"})
    changed = await world.git.changed_files(tmp_path / "app", before, after)
    assert changed == ("b.txt", "c/d.txt")


async def test_git_changed_files_of_an_unknown_commit_fail(world: World, tmp_path: Path) -> None:
    repo = world.create(tmp_path / "app", {"a.txt": "1"})
    with pytest.raises(GitFailed):
        await world.git.changed_files(tmp_path / "app", "e" * 40, repo.head())
