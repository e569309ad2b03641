"""Problems and warnings collected while translating one `.gitlab-ci.yml`.

Owns: the list of errors (reported all at once as one ConfigError, sorted by position), the
warnings (each unsupported keyword reported once, at its first use). Did-you-mean
suggestions come from `conveyor.suggest`. Must not: read files or decide what is valid
(the translators do that).
"""

from __future__ import annotations

from conveyor.errors import ConfigError, Problem
from conveyor.model import Mark

__all__ = ["Findings"]


class Findings:
    """Collects problems and once-per-keyword warnings; `raise_if_any` ends the parse."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._warnings: list[tuple[Mark, str]] = []
        self._warned: set[str] = set()

    def error(self, mark: Mark, message: str) -> None:
        self.problems.append(Problem(mark.file, mark.line, mark.col, message))

    def warn_once(self, key: str, mark: Mark, message: str) -> None:
        """Record a warning for `key` unless one was already recorded."""
        if key in self._warned:
            return
        self._warned.add(key)
        self._warnings.append((mark, message))

    @property
    def warnings(self) -> tuple[str, ...]:
        """Rendered `FILE:LINE:COL: warning: message` lines in file order."""
        return tuple(f"{mark}: warning: {message}" for mark, message in sorted(self._warnings))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)
