"""Mirrors and worktrees with real git: exact commits, diffs, failures, credentials."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from conveyor.errors import GitError
from conveyor.git.checkout import (
    Checkouts,
    GitAuth,
)
from tests.fakes.git import FakeGit
from tests.fakes.git_repos import GitRepo

TOKEN = "clone-token-0123456789abcdefgh"


@pytest.fixture
def checkouts(tmp_path: Path) -> Checkouts:
    return Checkouts(tmp_path / "mirrors", timeout_s=30, env=os.environ)


async def test_checkout_worktree_is_the_exact_commit(tmp_path: Path, checkouts: Checkouts) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"a.txt": "one\n"})
    first = remote.head()
    remote.commit({"a.txt": "two\n"})
    mirror = await checkouts.ensure_commit("acme/app", remote.clone_url, first)
    worktree = await checkouts.add_worktree("acme/app", mirror, first, tmp_path / "wt")
    assert (worktree / "a.txt").read_text() == "one\n"
    await checkouts.remove_worktree("acme/app", mirror, worktree)
    assert not worktree.exists()


async def test_checkout_fetches_new_commits_into_the_mirror(
    tmp_path: Path, checkouts: Checkouts
) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"a.txt": "one\n"})
    await checkouts.fetch("acme/app", remote.clone_url)
    newer = remote.commit({"b.txt": "new\n"})
    mirror = await checkouts.ensure_commit("acme/app", remote.clone_url, newer)
    assert await checkouts.list_files("acme/app", mirror, newer) == ("a.txt", "b.txt")


async def test_checkout_changed_files_between_pushes(tmp_path: Path, checkouts: Checkouts) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"a.txt": "one\n"})
    before = remote.head()
    after = remote.commit({"docs/x.md": "x\n", "a.txt": "two\n"})
    mirror = await checkouts.ensure_commit("acme/app", remote.clone_url, after)
    changed = await checkouts.changed_files("acme/app", mirror, before, after)
    assert changed == ("a.txt", "docs/x.md")
    assert await checkouts.changed_files("acme/app", mirror, None, after) is None


async def test_checkout_unknown_commit_is_a_clear_error(
    tmp_path: Path, checkouts: Checkouts
) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"a.txt": "one\n"})
    with pytest.raises(GitError, match=r"commit e{40} is not in the repository"):
        await checkouts.ensure_commit("acme/app", remote.clone_url, "e" * 40)


async def test_checkout_unreachable_remote_is_a_clear_error(
    tmp_path: Path, checkouts: Checkouts
) -> None:
    with pytest.raises(GitError, match=r"checkout acme/app: git clone failed"):
        await checkouts.fetch("acme/app", str(tmp_path / "missing"))


async def test_checkout_resolves_branches_and_tags(tmp_path: Path, checkouts: Checkouts) -> None:
    remote = GitRepo.create(tmp_path / "remote", {"a.txt": "one\n"})
    tagged = remote.tag("v1")
    assert await checkouts.resolve_ref("acme/app", remote.clone_url, "main") == remote.head()
    assert await checkouts.resolve_ref("acme/app", remote.clone_url, "v1") == tagged
    with pytest.raises(GitError, match="no branch or tag named 'nope'"):
        await checkouts.resolve_ref("acme/app", remote.clone_url, "nope")


async def test_checkout_git_timeout_kills_git(tmp_path: Path) -> None:
    # A fake `git` first on PATH that hangs: the timeout must end it, not the test.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    slow = Checkouts(tmp_path / "mirrors", timeout_s=0.3, env=env)
    with pytest.raises(GitError, match=r"git clone took longer than 0.3 s"):
        await slow.fetch("acme/app", "https://example.invalid/acme/app.git")


def test_git_auth_travels_in_the_environment_only() -> None:
    auth = GitAuth("github", TOKEN)
    env = auth.environment()
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    basic = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(basic).decode() == f"x-access-token:{TOKEN}"
    assert TOKEN not in repr(auth)


async def test_checkout_through_the_fake_names_the_repo_in_errors(tmp_path: Path) -> None:
    git = FakeGit()
    remote = git.create(tmp_path / "remote", {"a.txt": "one\n"})
    fake_checkouts = Checkouts(tmp_path / "mirrors", timeout_s=30, git=git)
    mirror = await fake_checkouts.ensure_commit("acme/app", remote.clone_url, remote.head())
    await fake_checkouts.add_worktree("acme/app", mirror, remote.head(), tmp_path / "w" / "1")
    assert (tmp_path / "w" / "1" / "a.txt").read_text() == "one\n"
    with pytest.raises(GitError, match=r"^checkout acme/app: git worktree failed"):
        await fake_checkouts.add_worktree("acme/app", mirror, "e" * 40, tmp_path / "w" / "2")


async def test_checkout_remove_worktree_logs_instead_of_raising(tmp_path: Path) -> None:
    git = FakeGit()
    remote = git.create(tmp_path / "remote", {"a.txt": "one\n"})
    fake_checkouts = Checkouts(tmp_path / "mirrors", timeout_s=30, git=git)
    mirror = await fake_checkouts.fetch("acme/app", remote.clone_url)
    with capture_logs() as logs:
        await fake_checkouts.remove_worktree("acme/app", mirror, tmp_path / "never-added")
    assert [entry["event"] for entry in logs] == ["checkout.cleanup_failed"]
