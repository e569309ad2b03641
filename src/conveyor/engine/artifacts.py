"""Artifacts: files a job leaves for the jobs after it.

After a job, the files of its workspace matching `Artifacts.paths` (a path that names a
folder takes everything below it), minus `Artifacts.exclude`, are copied into
`<run_dir>/artifacts/<job>/` when `Artifacts.when` agrees with the job's outcome. Before a
job of an isolated pipeline, the saved artifacts of `PlannedJob.artifacts_from` are copied
into its workspace (in a shared workspace the files are already there: nothing is copied
back, so a later job's changes are never overwritten).
Matching is `conveyor.globs` (pure); this module is the file-system edge around it and is
synchronous (the scheduler calls it through `asyncio.to_thread`). It never deletes anything
in a workspace and never follows a path out of it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from conveyor.globs import filter_paths
from conveyor.model import Artifacts, ArtifactWhen

__all__ = [
    "artifacts_dir",
    "collect_artifacts",
    "dotenv_dir",
    "list_files",
    "restore_artifacts",
    "safe_segment",
    "should_collect",
]

# Never saved as artifacts: version control and conveyor's own state.
_SKIPPED_DIRS = frozenset({".git", ".conveyor"})


def safe_segment(name: str) -> str:
    """`name` as one path segment that cannot climb out of its folder."""
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name).lstrip(".") or "_"


def artifacts_dir(run_dir: Path, job: str) -> Path:
    """`<run_dir>/artifacts/<job>` with the job name made one safe path segment."""
    return run_dir / "artifacts" / safe_segment(job)


def dotenv_dir(run_dir: Path) -> Path:
    """`<run_dir>/dotenv`, where dotenv.py saves each job's dotenv variables; it exists only
    once a job has saved some, so a job can skip importing dotenv.py when it does not."""
    return run_dir / "dotenv"


def should_collect(when: ArtifactWhen, *, succeeded: bool) -> bool:
    if when is ArtifactWhen.ALWAYS:
        return True
    return succeeded == (when is ArtifactWhen.ON_SUCCESS)


def list_files(root: Path) -> list[str]:
    """Every file below `root` as sorted `/` paths, without `.git` and `.conveyor`."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found.extend(prefix + name for name in sorted(files))
    return found


def _with_folders(patterns: Iterable[str]) -> list[str]:
    """Each pattern, plus the same pattern as a folder (GitLab: `dist` takes `dist/**`)."""
    result: list[str] = []
    for pattern in patterns:
        result.append(pattern)
        if not pattern.endswith("/"):
            result.append(pattern + "/")
    return result


def collect_artifacts(workspace: Path, artifacts: Artifacts, dest: Path) -> list[str]:
    """Copy the matching files of `workspace` into `dest`; returns their relative paths."""
    files = filter_paths(_with_folders(artifacts.paths), list_files(workspace))
    if artifacts.exclude:
        excluded = set(filter_paths(_with_folders(artifacts.exclude), files))
        files = [f for f in files if f not in excluded]
    for rel in files:
        source = workspace / rel
        if source.is_symlink() or not source.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return files


def restore_artifacts(sources: Iterable[Path], workspace: Path) -> int:
    """Copy every file under each of `sources` (in order; later ones win) into
    `workspace`; returns the number of files copied. Missing sources are skipped."""
    count = 0
    for source in sources:
        if not source.is_dir():
            continue
        for rel in list_files(source):
            target = workspace / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, target)
            count += 1
    return count
