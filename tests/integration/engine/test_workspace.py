"""Job workspaces (shared, git worktree, copy) and artifacts on a real file system."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conveyor.engine.artifacts import (
    artifacts_dir,
    collect_artifacts,
    restore_artifacts,
    should_collect,
)
from conveyor.engine.workspace import JobWorkspaces, copy_file, open_job_workspace
from conveyor.model import Artifacts, ArtifactWhen
from tests.fakes.git import FakeGit


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "tracked.txt").write_text("committed")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c1")
    (repo / "dirty.txt").write_text("not committed")
    return repo, _git(repo, "rev-parse", "HEAD")


async def test_workspace_shared_is_the_workspace(tmp_path: Path) -> None:
    async with open_job_workspace(tmp_path, isolate=False, sha="", scratch=tmp_path / "x") as d:
        assert d == tmp_path


async def test_workspace_isolated_uses_clean_worktree(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path)
    scratch = repo / ".conveyor" / "work" / "job-1"
    async with open_job_workspace(repo, isolate=True, sha=sha, scratch=scratch) as where:
        seen = sorted(p.name for p in where.iterdir() if p.name != ".git")
    assert (seen, scratch.exists()) == (["tracked.txt"], False)
    assert len(_git(repo, "worktree", "list").splitlines()) == 1


async def test_workspace_jobs_get_private_copies_of_one_checkout(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path)
    root = tmp_path / "run" / "work"
    workspaces = JobWorkspaces(repo, isolate=True, sha=sha, root=root)
    async with workspaces.open(root / "a-1") as a, workspaces.open(root / "b-1") as b:
        (a / "tracked.txt").write_text("changed by a")
        (a / "new.txt").write_text("a")
        seen_by_b = ((b / "tracked.txt").read_text(), (b / "new.txt").exists())
        head_in_b = _git(b, "rev-parse", "HEAD")
    async with workspaces.open(root / "c-1") as c:
        seen_by_c = (c / "tracked.txt").read_text()
    await workspaces.close()
    assert (seen_by_b, head_in_b, seen_by_c) == (("committed", False), sha, "committed")
    assert (root.exists(), len(_git(repo, "worktree", "list").splitlines())) == (False, 1)


def test_copy_file_keeps_bytes_and_mode(tmp_path: Path) -> None:
    source = tmp_path / "script.sh"
    source.write_bytes(b"#!/bin/sh\necho hi\n" * 1000)
    source.chmod(0o755)
    target = tmp_path / "copy.sh"
    copy_file(str(source), str(target))
    assert (target.read_bytes(), target.stat().st_mode) == (
        source.read_bytes(),
        source.stat().st_mode,
    )


async def test_workspace_isolated_copies_without_git(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".conveyor").mkdir(parents=True)
    (project / "src").mkdir()
    (project / "src" / "a.txt").write_text("a")
    scratch = tmp_path / "scratch"
    async with open_job_workspace(project, isolate=True, sha="", scratch=scratch) as where:
        (where / "made-by-job").write_text("x")
        seen = sorted(str(p.relative_to(where)) for p in where.rglob("*"))
    assert (seen, (project / "made-by-job").exists()) == (
        ["made-by-job", "src", "src/a.txt"],
        False,
    )


def test_artifacts_collect_with_folders_and_exclude(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "dist" / "sub").mkdir(parents=True)
    (ws / "dist" / "app").write_text("bin")
    (ws / "dist" / "sub" / "debug.log").write_text("log")
    (ws / "other.txt").write_text("o")
    dest = artifacts_dir(tmp_path / "run", "build [PY=3.12]")
    saved = collect_artifacts(ws, Artifacts(paths=("dist",), exclude=("**/*.log",)), dest)
    assert (saved, (dest / "dist" / "app").read_text()) == (["dist/app"], "bin")


def test_artifacts_restore_copies_into_workspace(tmp_path: Path) -> None:
    source = tmp_path / "saved"
    (source / "dist").mkdir(parents=True)
    (source / "dist" / "app").write_text("bin")
    ws = tmp_path / "ws"
    ws.mkdir()
    count = restore_artifacts([source, tmp_path / "missing"], ws)
    assert (count, (ws / "dist" / "app").read_text()) == (1, "bin")


def test_artifacts_dir_is_one_safe_segment(tmp_path: Path) -> None:
    assert artifacts_dir(tmp_path, "../x y/z").name == "_x_y_z"


def test_should_collect_follows_when() -> None:
    cases = [
        should_collect(ArtifactWhen.ON_SUCCESS, succeeded=True),
        should_collect(ArtifactWhen.ON_SUCCESS, succeeded=False),
        should_collect(ArtifactWhen.ON_FAILURE, succeeded=False),
        should_collect(ArtifactWhen.ALWAYS, succeeded=False),
    ]
    assert cases == [True, False, True, True]


async def test_workspace_isolated_copies_the_folder_when_git_lacks_the_commit(
    tmp_path: Path,
) -> None:
    repo, _ = _repo(tmp_path)
    root = tmp_path / "run" / "work"
    workspaces = JobWorkspaces(repo, isolate=True, sha="e" * 40, root=root)
    async with workspaces.open(root / "a-1") as where:
        seen = sorted(p.name for p in where.iterdir())
    await workspaces.close()
    assert (seen, root.exists()) == (["dirty.txt", "tracked.txt"], False)


async def test_workspace_checks_out_through_the_git_it_is_given(tmp_path: Path) -> None:
    git = FakeGit()
    repo = git.create(tmp_path / "repo", {"a.txt": "one"})
    first = repo.head()
    repo.commit({"a.txt": "two"})
    root = tmp_path / "run" / "work"
    workspaces = JobWorkspaces(repo.path, isolate=True, sha=first, root=root, git=git)
    async with workspaces.open(root / "a-1") as where:
        seen = (where / "a.txt").read_text()
    await workspaces.close()
    assert (seen, root.exists()) == ("one", False)
