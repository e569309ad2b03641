"""Helpers for the GitLab translation tests: parse text with in-memory include files."""

from __future__ import annotations

import textwrap

from conveyor.config.gitlab import parse_gitlab
from conveyor.config.gitlab.includes import match_include
from conveyor.errors import ConfigError
from conveyor.model import Pipeline

__all__ = ["errors_of", "parse"]


def parse(text: str, files: dict[str, str] | None = None) -> Pipeline:
    """Parse `.gitlab-ci.yml` text; `files` are the repository's other files by path."""
    repo = {path: textwrap.dedent(body) for path, body in (files or {}).items()}

    def read(pattern: str) -> list[tuple[str, str]]:
        return [(path, repo[path]) for path in match_include(pattern, repo)]

    return parse_gitlab(textwrap.dedent(text), ".gitlab-ci.yml", read)


def errors_of(text: str, files: dict[str, str] | None = None) -> list[str]:
    """The rendered problems of a file that must not parse."""
    try:
        parse(text, files)
    except ConfigError as exc:
        return [str(problem) for problem in exc.problems]
    raise AssertionError("expected a ConfigError")
