"""GitLab CI/CD compatibility: `.gitlab-ci.yml` → the shared Pipeline model.

Owns: `load_gitlab(path, event=..., changes_since=..., fetch=...)`, the I/O edge that reads
the main file and the files that `include: local` names (patterns are matched against the
files under the file's directory, the repository root for a `.gitlab-ci.yml`), hands
`include: remote` URLs to the caller's `fetch` (a config.remote.RemoteFetcher; the network
adapter lives in conveyor.outbound) and asks the caller's `changes_since` (git, at the
edge) for `include:rules:changes:compare_to`. Everything else is pure and lives in this
package: parse (order of the steps), document (one file's YAML), inputs (spec:inputs),
includes (include_entries, include_rules, include_gitlab for project/template/component
through a GitLabFiles), unavailable (jobs needing an unreadable include), extends (deep
merge, !reference), inherit, jobs, cache, needs (job and rules:needs), parallel, rules
(rules/only/except/workflow), variables (values → text), durations, keywords, findings.
Must not: plan or run anything — the shared planner and engine do that — nor run git or
touch the network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.config.gitlab.parse import parse_gitlab
from conveyor.errors import ConfigError, Problem
from conveyor.model import Event, Pipeline

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import ChangesSince, IncludeConditions
    from conveyor.config.remote import GitLabFiles, RemoteFetcher

__all__ = ["load_gitlab", "parse_gitlab"]

_SKIPPED_DIRS = frozenset({".git", ".conveyor", ".venv", "node_modules", ".tools"})


def _repository_files(root: Path) -> list[str]:
    files: list[str] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS)
        relative = Path(directory).relative_to(root)
        files.extend((relative / name).as_posix() for name in names)
    return files


class _Repository:
    """The files under the pipeline's directory, listed once and only when needed."""

    def __init__(self, root: Path, label_base: Path) -> None:
        self.root = root
        self.label_base = label_base
        self._listing: list[str] | None = None

    def list_files(self) -> list[str]:
        if self._listing is None:
            self._listing = _repository_files(self.root)
        return self._listing

    def read(self, pattern: str) -> list[tuple[str, str]]:
        if any(ch in pattern for ch in "*?"):
            from conveyor.config.gitlab.includes import match_include  # only with include:

            paths = match_include(pattern, self.list_files())
        else:
            paths = [pattern] if (self.root / pattern).is_file() else []
        found: list[tuple[str, str]] = []
        for relative in paths:
            try:
                text = (self.root / relative).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found.append(((self.label_base / relative).as_posix(), text))
        return found


def load_gitlab(
    path: Path,
    *,
    event: Event | None = None,
    changes_since: ChangesSince | None = None,
    fetch: RemoteFetcher | None = None,
    strict: bool = False,
    gitlab: GitLabFiles | None = None,
    inputs: Mapping[str, str] | None = None,
) -> Pipeline:
    """Read and translate a `.gitlab-ci.yml`. Raises ConfigError with every problem.
    `inputs`: values for the file's own `spec:inputs` (`--input NAME=VALUE`).

    `event`: the event the pipeline will be planned for; `include:rules` are decided with
    its predefined and `--var` variables, changed files and file list. None: no event is
    known, so every conditional include is loaded (and a warning says so).
    `changes_since`: the paths changed since each ref `changes:compare_to` names (the edge
    asks git: `git.describe.changes_lookup`); None: unknown, so such rules hold.
    `fetch` reads `include: remote` files (None: they are unavailable). `strict`: an
    include that cannot be read, and the jobs that need it, are errors, not warnings.
    `gitlab` reads `project`, `template` and `component` includes (None: unavailable)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(file, 0, 0, "file not found (check the path)")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(file, 0, 0, "not UTF-8 text (save it as UTF-8)")]) from None
    except OSError as exc:
        problem = Problem(
            file, 0, 0, f"cannot read the file ({exc.strerror}; check its permissions)"
        )
        raise ConfigError([problem]) from None
    repository = _Repository(path.resolve().parent, path.parent)

    def make_conditions(event: Event) -> IncludeConditions:  # only for a file with include:
        from conveyor.config.gitlab.include_rules import include_conditions

        return include_conditions(
            event,
            list_files=repository.list_files,
            changes_since=changes_since,
        )

    conditions = None if event is None else partial(make_conditions, event)
    return parse_gitlab(
        text,
        file,
        repository.read,
        fetch=fetch,
        conditions=conditions,
        strict=strict,
        gitlab=gitlab,
        inputs=inputs,
    )
