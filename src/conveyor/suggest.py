"""Did-you-mean: the one place that finds the known name closest to a wrong one.

Every "unknown X" message (pipeline keys and keywords, `--job`, a run's jobs on the CLI and
in the API) asks here, so the same typo gets the same suggestion everywhere. Pure; difflib
is imported only when a name is wrong (a valid file's run never needs it).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CUTOFF", "closest_name", "did_you_mean"]

CUTOFF = 0.6  # difflib's ratio below which a name is not "close"


def closest_name(name: str, candidates: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The candidate closest to `name`, or None when none is close (ties: the same answer
    whatever the candidates' order)."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest candidate, or "" when none is close: the tail
    of a pipeline problem's message."""
    close = closest_name(name, candidates)
    return f' (did you mean "{close}"?)' if close else ""
