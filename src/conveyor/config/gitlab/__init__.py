"""GitLab CI/CD compatibility: `.gitlab-ci.yml` → the shared Pipeline model.

Owns: `load_gitlab(path)`, the I/O edge that reads the main file and the files that
`include: local` names (patterns are matched against the files under the file's
directory, the repository root for a `.gitlab-ci.yml`). Everything else is pure and lives
in this package: parse (order of the steps), includes, extends (deep merge, !reference),
inherit, jobs, cache, needs (job and rules:needs), parallel, rules (rules/only/except/workflow),
durations, keywords, findings.
Must not: plan or run anything — the shared planner and engine do that.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.config.gitlab.includes import Reader, match_include
from conveyor.config.gitlab.parse import parse_gitlab
from conveyor.errors import ConfigError, Problem
from conveyor.model import Pipeline

__all__ = ["load_gitlab", "parse_gitlab"]

_SKIPPED_DIRS = frozenset({".git", ".conveyor", ".venv", "node_modules", ".tools"})


def _repository_files(root: Path) -> list[str]:
    files: list[str] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS)
        relative = Path(directory).relative_to(root)
        files.extend((relative / name).as_posix() for name in names)
    return files


def _reader(root: Path, label_base: Path) -> Reader:
    listing: list[str] = []

    def read(pattern: str) -> list[tuple[str, str]]:
        if any(ch in pattern for ch in "*?"):
            if not listing:
                listing.extend(_repository_files(root))
            paths = match_include(pattern, listing)
        else:
            paths = [pattern] if (root / pattern).is_file() else []
        found: list[tuple[str, str]] = []
        for relative in paths:
            try:
                text = (root / relative).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found.append(((label_base / relative).as_posix(), text))
        return found

    return read


def load_gitlab(path: Path) -> Pipeline:
    """Read and translate a `.gitlab-ci.yml`. Raises ConfigError with every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(file, 0, 0, "file not found (check the path)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, 0, 0, f"cannot read the file: {exc}")]) from None
    root = path.resolve().parent
    return parse_gitlab(text, file, _reader(root, path.parent))
