"""Secret masking, the one rule for every output: job log records, the terminal, stored
records and triggers, and conveyor's own log lines.

The rule (as GitLab's): only exact secret values are masked. Every occurrence of a value of
at least MIN_SECRET_LENGTH characters becomes MASK (`[MASKED]`); when one secret contains
another, the longer is masked whole. A shorter value ("1", "on") is never masked: it would
mask ordinary text, and GitLab refuses to mask one too. A value split across two lines, or
transformed (base64, reversed), is not recognised.

A `Masker` is built once from the values it may see; masking a text is one pass of a single
compiled alternation. With no values, masking is the identity and costs one branch. Pure:
values come in as arguments; this module never reads the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Masker", "maskable"]

MASK = "[MASKED]"
MIN_SECRET_LENGTH = 4


def maskable(values: Iterable[str]) -> tuple[str, ...]:
    """The values that are masked, each once, longest first."""
    return tuple(sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True))


class Masker:
    """Replaces every occurrence of any maskable value of `values` with MASK."""

    __slots__ = ("_pattern", "values")

    def __init__(self, values: Iterable[str]) -> None:
        self.values = maskable(values)
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None

    @property
    def is_active(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
