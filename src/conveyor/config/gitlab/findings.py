"""Problems and warnings collected while translating one `.gitlab-ci.yml`.

Owns: the list of errors (reported all at once as one ConfigError, sorted by position), the
warnings (each unsupported keyword reported once, at its first use), the includes that
could not be read (`unavailable`) and what is left out because of them: warnings, or
errors under `strict` (`--strict`). Did-you-mean suggestions come from `conveyor.suggest`.
A problem or warning found in a fetched
`include: remote` file (`remote_files`) says where only, with a fixed reason
(`REMOTE_PROBLEM`): its message would quote keys, names and values of that file, which may
be anything the URL answered (a metadata service, an internal page).
Must not: read files or decide what is valid (the translators do that).
"""

from __future__ import annotations

import re
from dataclasses import replace

from conveyor.errors import ConfigError, Problem
from conveyor.model import Mark

__all__ = ["REMOTE_PROBLEM", "Findings", "redact_quoted"]

REMOTE_PROBLEM = (
    "invalid pipeline content in this fetched file (its text is not shown; open the file "
    "at this line and column)"
)

_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")


def redact_quoted(message: str) -> str:
    """`message` with every quoted part shown as `"…"`."""
    return _QUOTED.sub('"…"', message)


class Findings:
    """Collects problems and once-per-keyword warnings; `raise_if_any` ends the parse."""

    def __init__(self, *, strict: bool = False) -> None:
        self.problems: list[Problem] = []
        self.strict = strict
        # (where the include is written, what it is: `include:template Jobs/Build.yml`)
        self.unavailable: list[tuple[Mark, str]] = []
        self.left_out_jobs: set[str] = set()  # jobs and templates left out because of them
        self.unresolved: set[str] = set()  # jobs whose extends failed (reported once, there)
        self._warnings: list[tuple[Mark, str]] = []
        self._warned: set[str] = set()
        self.remote_files: set[str] = set()  # labels of fetched files: their text not shown
        self._include_problems: set[Problem] = set()

    def include_unavailable(self, mark: Mark, what: str, why: str) -> None:
        """An include that cannot be read here (`why`: the reason); a warning, an error
        under `strict`. Jobs depending on it are then `left_out`."""
        self.unavailable.append((mark, what))
        message = f"{what} cannot be read here ({why}); jobs that depend on it are left out"
        if self.strict:
            self.include_error(mark, f"{message}; --strict refuses that (drop it to plan the rest)")
        else:
            self._warnings.append((mark, message))

    def left_out(self, mark: Mark, message: str, job: str = "") -> None:
        """`job` left out because of an unavailable include: a warning (an error under
        `strict`)."""
        if job:
            self.left_out_jobs.add(job)
        if self.strict:
            self.error(mark, f"{message} (--strict)")
        elif mark.file in self.remote_files:  # names from a fetched file are not shown
            self._warnings.append((mark, redact_quoted(message)))
        else:
            self._warnings.append((mark, message))

    def error(self, mark: Mark, message: str) -> None:
        if mark.file in self.remote_files:
            message = REMOTE_PROBLEM
        self.problems.append(Problem(mark.file, mark.line, mark.col, message))

    def include_error(self, mark: Mark, message: str) -> None:
        """A problem of an include entry, said in full even in a fetched file: its message
        names include locations (URLs without their query), cycles, fetch failures."""
        problem = Problem(mark.file, mark.line, mark.col, message)
        self._include_problems.add(problem)
        self.problems.append(problem)

    def warn_once(self, key: str, mark: Mark, message: str) -> None:
        """Record a warning for `key` unless one was already recorded."""
        if key in self._warned:
            return
        self._warned.add(key)
        if mark.file in self.remote_files:
            message = "a keyword of this fetched file is not acted upon (its text is not shown)"
        self._warnings.append((mark, message))

    @property
    def warnings(self) -> tuple[str, ...]:
        """Rendered `FILE:LINE:COL: warning: message` lines in file order."""
        return tuple(f"{mark}: warning: {message}" for mark, message in sorted(self._warnings))

    def shown_problems(self) -> list[Problem]:
        """The problems, those of fetched files (added by `problems.extend` too) redacted."""
        return [
            replace(p, message=REMOTE_PROBLEM)
            if p.file in self.remote_files and p not in self._include_problems
            else p
            for p in self.problems
        ]

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.shown_problems())
