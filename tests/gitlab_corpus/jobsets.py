"""Job sets of the real projects (tests/gitlab_real/): conveyor's plan vs gitlab-ci-local.

For each project, in a fresh git repository on branch `main` (gcl.prepare_repo): the jobs
conveyor plans for a push to the default branch (`conveyor plan --json`, offline) and the
jobs `gitlab-ci-local --list-json` lists (manual jobs included, `when: never` and hidden
jobs not, gitlab-ci-local's parallel names spelt as GitLab's, gcl.gitlab_name). A project
whose includes need a GitLab server or the network is skipped, with the reason: conveyor's
offline warning, or gitlab-ci-local's own error when it cannot list the jobs.
Used by bench/gitlab_real_compat.py (`make compat`) and
tests/integration/gitlab/test_gitlab_real_gcl.py: one implementation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.gitlab_corpus.gcl import REPO, _env, find_gcl, gitlab_name, prepare_repo

__all__ = ["KNOWN_DIFFERENCES", "REAL", "JobSets", "compare_project", "real_projects"]

REAL = REPO / "tests" / "gitlab_real"
_UNREADABLE = re.compile(r"warning: (include:(template|project|component|remote) .*) cannot be")
_TIMEOUT_S = 60

# project -> (only conveyor plans, only gitlab-ci-local lists): the differences
# docs/gitlab-compat.md explains ("Real projects: job sets against gitlab-ci-local").
KNOWN_DIFFERENCES: dict[str, tuple[list[str], list[str]]] = {
    # `only: refs: [master, ...]` on a push to main: GitLab creates no job; gitlab-ci-local
    # ignores `only`/`except` (firecow/gitlab-ci-local#467).
    "freedesktop__bustle": ([], ["flatpak-build"]),
}


@dataclass(frozen=True)
class JobSets:
    project: str
    skipped: str | None = None  # why the sets were not compared
    only_conveyor: list[str] = field(default_factory=list)
    only_gcl: list[str] = field(default_factory=list)
    same: int = 0  # jobs in both sets

    @property
    def differs(self) -> bool:
        return bool(self.only_conveyor or self.only_gcl)


def real_projects() -> list[Path]:
    entries = json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))
    return sorted((REAL / entry["dir"] for entry in entries), key=lambda p: p.name.lower())


def _conveyor_jobs(repo: Path, home: Path) -> tuple[set[str], list[str]]:
    """(the jobs planned for a push to main, the includes that cannot be read offline)."""
    env = dict(os.environ, CONVEYOR_HOME=str(home), CONVEYOR_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "plan", "--json", "--event", "push", "--ref", "main"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=_TIMEOUT_S,
        check=False,
    )
    unreadable = [m.group(1) for m in map(_UNREADABLE.search, done.stderr.splitlines()) if m]
    if done.returncode != 0:
        raise RuntimeError(f"conveyor plan failed in {repo}: {done.stderr}")
    return {job["name"] for job in json.loads(done.stdout)["jobs"]}, unreadable


def _gcl_jobs(repo: Path) -> set[str] | str:
    """The jobs gitlab-ci-local lists, or its error. Its JSON schema is stricter than GitLab
    (an empty `artifacts:paths` that GitLab runs is refused), so it is not applied."""
    found = find_gcl()
    if found is None:
        return "gitlab-ci-local is not installed"
    gcl, node = found
    done = subprocess.run(
        [str(gcl), "--list-json", "--json-schema-validation=false"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(node),
        timeout=_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        error = next((line for line in lines if line.startswith("Error")), lines[-1])
        return f"gitlab-ci-local cannot list the jobs: {error}"
    listed = json.loads(done.stdout)
    return {gitlab_name(job["name"]) for job in listed if job.get("when") != "never"}


def compare_project(project: Path, root: Path) -> JobSets:
    """The two job sets of one real project (`root`: a scratch folder of its own)."""
    repo = prepare_repo(project, root / project.name, "main")
    conveyor, unreadable = _conveyor_jobs(repo, root / "home")
    if unreadable:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        return JobSets(project.name, skipped=f"needs the network: {unreadable[0]}{more}")
    gcl = _gcl_jobs(repo)
    if isinstance(gcl, str):
        return JobSets(project.name, skipped=gcl)
    return JobSets(
        project.name,
        only_conveyor=sorted(conveyor - gcl),
        only_gcl=sorted(gcl - conveyor),
        same=len(conveyor & gcl),
    )
