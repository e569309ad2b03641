"""GitCli's process policy with the real git program: what git sees of our environment,
and that a deadline or a cancel leaves no process of git's behind."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

from conveyor.git.adapter import GitCli
from conveyor.git.base import GitFailed
from conveyor.git.policy import Timeouts
from tests.fakes.git_repos import GitRepo
from tests.fakes.processes import live_with_marker

TOKEN = "glpat-never-for-git-0123456789"


async def test_git_sees_only_the_safe_environment(tmp_path: Path) -> None:
    # The post-checkout hook of `worktree add` writes the environment git gave it.
    repo = GitRepo.create(tmp_path / "app", {"a.txt": "1"})
    hook = repo.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nenv > {tmp_path / 'env.txt'}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    ours = {**os.environ, "GITLAB_TOKEN": TOKEN, "GIT_DIR": "/nowhere"}
    await GitCli(env=ours).add_worktree(repo.path, repo.head(), tmp_path / "w")
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert TOKEN not in (tmp_path / "env.txt").read_text()
    assert (seen["GIT_TERMINAL_PROMPT"], seen["LC_ALL"]) == ("0", "C")


def _hanging_git(tmp_path: Path, marker: str) -> dict[str, str]:
    """An environment whose `git` starts a helper (carrying `marker`) and waits for it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    helper = f"{sys.executable} -c 'import time; time.sleep(30)' {marker}"
    fake.write_text(f"#!/bin/sh\n{helper} &\nwait\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


async def _gone(marker: str) -> list[int]:
    for _ in range(50):
        if not live_with_marker(marker):
            break
        await asyncio.sleep(0.02)
    return live_with_marker(marker)


async def test_git_past_its_deadline_is_killed_with_its_helpers(tmp_path: Path) -> None:
    marker = f"git-deadline-{uuid.uuid4().hex}"
    git = GitCli(Timeouts(network_s=0.5), env=_hanging_git(tmp_path, marker))
    with pytest.raises(GitFailed, match=r"git clone took longer than 0.5 s"):
        await git.clone_mirror("https://example.invalid/a.git", tmp_path / "m.git", auth=None)
    assert await _gone(marker) == []


async def test_git_cancelled_is_killed_with_its_helpers(tmp_path: Path) -> None:
    marker = f"git-cancel-{uuid.uuid4().hex}"
    git = GitCli(env=_hanging_git(tmp_path, marker))
    task = asyncio.create_task(git.fetch_mirror(tmp_path, auth=None))
    for _ in range(100):
        if live_with_marker(marker):
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone(marker) == []


async def test_git_missing_program_is_a_git_error(tmp_path: Path) -> None:
    git = GitCli(env={"PATH": str(tmp_path)})
    with pytest.raises(GitFailed, match="git could not start"):
        await git.list_files(tmp_path, "HEAD")
