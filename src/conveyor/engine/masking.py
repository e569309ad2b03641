"""Secret masking: every declared secret value becomes `[MASKED]` in log records, the
terminal and stored records.

A `Masker` is built once per job from the secret values it may see; masking a line is one
pass of a single compiled alternation (longest value first, so a secret that contains
another is masked whole). With no secrets, masking is the identity and costs one branch.
Pure: values come in as arguments; this module never reads the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["MASK", "Masker", "secret_values"]

MASK = "[MASKED]"
# Values this short would mask ordinary text ("1", "on"); GitLab refuses to mask them too.
MIN_SECRET_LENGTH = 4


class Masker:
    """Replaces every occurrence of any of `values` with `[MASKED]`."""

    __slots__ = ("_pattern",)

    def __init__(self, values: Iterable[str]) -> None:
        unique = sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None

    @property
    def is_active(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def secret_values(names: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    """The values of the secrets `names` that are set in `env` (conveyor's environment)."""
    return {name: env[name] for name in names if env.get(name)}
