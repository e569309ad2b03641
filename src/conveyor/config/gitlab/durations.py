"""GitLab's human durations (`timeout: 1h 30m`, `start_in: 90 minutes`) to seconds.

Owns: the duration grammar GitLab accepts through ChronicDuration for `timeout`,
`start_in` and `retry` delays: numbers with units (s, sec, second(s), m, min(s), minute(s),
h, hr(s), hour(s), d, day(s), w, week(s)), several parts separated by spaces, commas or
"and", and a bare number meaning seconds. Must not: accept anything else silently.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = ["parse_duration"]

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "week": 604800,
    "weeks": 604800,
}


@cache
def _regexes() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(part, separator), compiled on the first duration: most files have none."""
    return re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)"), re.compile(r"(?:\s|,|\band\b)*")


def parse_duration(value: object) -> float | None:
    """Seconds for a GitLab duration, or None when `value` is not one.

    >>> parse_duration("1h 30m"), parse_duration("90 minutes"), parse_duration(45)
    (5400.0, 5400.0, 45.0)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if not text:
        return None
    total = 0.0
    pos = 0
    part_regex, separator = _regexes()
    while pos < len(text):
        pos = separator.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        if pos >= len(text):
            break
        part = part_regex.match(text, pos)
        if part is None:
            return None
        number, unit = part.groups()
        if unit and unit not in _UNITS:
            return None
        total += float(number) * _UNITS.get(unit, 1)
        pos = part.end()
    return total
