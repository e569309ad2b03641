"""Pipeline files -> Pipeline: finding the file, reading it, and choosing the flavor.

Owns: the I/O edge of configuration (`find_pipeline_file`, `load_pipeline`). Parsing itself
is pure and lives in `config.native` (`.conveyor.yml`) and `config.gitlab` (`.gitlab-ci.yml`,
imported only when such a file is loaded).
Must not: plan or run anything, or touch the network: `include: remote` files come from the
RemoteFetcher (config.remote) the caller passes, e.g. conveyor.outbound.remote's.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.config.remote import GitLabFiles, RemoteFetcher
from conveyor.errors import ConfigError, Problem, UsageError
from conveyor.model import Event, Pipeline

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import ChangesSince

__all__ = [
    "PIPELINE_FILES",
    "RemoteFetcher",
    "find_pipeline_file",
    "is_gitlab_file",
    "load_pipeline",
]

PIPELINE_FILES = (".conveyor.yml", ".gitlab-ci.yml")


def is_gitlab_file(path: Path) -> bool:
    """`.gitlab-ci.yml`, or any `*.gitlab-ci.yml` / `*.gitlab-ci.yaml`."""
    name = path.name
    return name.endswith((".gitlab-ci.yml", ".gitlab-ci.yaml")) or name in (
        "gitlab-ci.yml",
        "gitlab-ci.yaml",
    )


def find_pipeline_file(directory: Path, configured: str | None = None) -> Path:
    """The pipeline file of `directory` (a project folder, or a commit's worktree): the
    `configured` one (a repo's `pipeline_file`), else `.conveyor.yml`, else
    `.gitlab-ci.yml`. The one place that looks; UsageError when there is none."""
    names = (configured,) if configured else PIPELINE_FILES
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    wanted = " or ".join(names)
    raise UsageError(
        f"{directory}: no pipeline file found: no {wanted} (create one, or name the file "
        "with -f FILE, or pipeline_file in conveyor.toml)"
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found (check the -f argument)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [Problem(str(path), 0, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def load_pipeline(
    path: Path,
    *,
    event: Event | None = None,
    changes_since: ChangesSince | None = None,
    fetch: RemoteFetcher | None,
    strict: bool = False,
    gitlab: GitLabFiles | None = None,
    inputs: Mapping[str, str] | None = None,
) -> Pipeline:
    """Read and validate the pipeline at `path`; ConfigError lists every problem.

    Files named `.gitlab-ci.yml` (or `*.gitlab-ci.yml`) are read as GitLab CI/CD; `event` is
    the event the pipeline will be planned for, which decides GitLab's `include:rules`
    (None: every conditional include is loaded), and `changes_since` answers their
    `changes:compare_to` (the edge asks git: `git.describe.changes_lookup`; None: unknown,
    so they hold), and `fetch` reads its `include: remote` files (every caller passes
    `conveyor.outbound.remote.HttpRemoteFetcher()`; None: such includes are ignored with a
    warning). `strict` (`--strict`): a GitLab include that cannot be read (template,
    project, component, remote offline) is an error, not a warning that leaves out the jobs
    needing it. `gitlab` reads `project`, `template` and `component` includes from a GitLab
    instance (`conveyor.outbound.gitlab_files.GitLabApiFiles`; None: they are unavailable).
    `inputs` (`--input NAME=VALUE`) are the values of a GitLab file's own `spec:inputs`.
    The native format has none of these and ignores them all (but `inputs`: an error).
    """
    if is_gitlab_file(path):
        try:
            flavor = importlib.import_module("conveyor.config.gitlab")
        except ModuleNotFoundError as exc:
            if exc.name != "conveyor.config.gitlab":
                raise
            flavor = None
        loader = getattr(flavor, "load_gitlab", None)
        if loader is None:
            raise ConfigError(
                [Problem(str(path), 0, 0, "the GitLab CI/CD flavor is not available")]
            )
        pipeline: Pipeline = loader(
            path,
            event=event,
            changes_since=changes_since,
            fetch=fetch,
            strict=strict,
            gitlab=gitlab,
            inputs=inputs,
        )
        return pipeline
    if inputs:
        raise UsageError(
            f"--input {next(iter(inputs))}: inputs are for a .gitlab-ci.yml with spec:inputs, "
            f"not {path.name}"
        )
    from conveyor.config.native import parse_native

    return parse_native(_read_text(path), str(path))
