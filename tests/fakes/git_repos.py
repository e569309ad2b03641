"""Real git repositories made in a temp folder, to stand in for GitHub/GitLab remotes.

`GitRepo.create(path)` makes a non-bare repo on branch `main` with a fixed identity; `commit`
writes files and commits them, returning the sha; `tag` makes an annotated tag. The repo's
path is a valid `clone_url`. Nothing here touches the network.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ZERO_SHA", "GitRepo"]

ZERO_SHA = "0" * 40
_ENV = {
    "GIT_AUTHOR_NAME": "Conveyor Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Conveyor Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_SYSTEM": "/dev/null",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/nonexistent",
}


@dataclass(frozen=True)
class GitRepo:
    path: Path

    @classmethod
    def create(cls, path: Path, files: dict[str, str] | None = None) -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "--quiet", "--initial-branch=main")
        if files:
            repo.commit(files, "initial commit")
        return repo

    @property
    def clone_url(self) -> str:
        return str(self.path)

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=_ENV,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def branch(self, name: str) -> None:
        self.git("checkout", "--quiet", "-B", name)

    def tag(self, name: str, message: str = "release") -> str:
        self.git("tag", "-a", name, "-m", message)
        return self.head(f"{name}^{{commit}}")
