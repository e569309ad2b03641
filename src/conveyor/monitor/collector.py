"""When the cyclic garbage collector's full passes run in a process that watches targets.

A monitor of thousands of targets holds hundreds of thousands of long-lived objects
(entries, pipelines, history). CPython starts a full pass over all of them whenever enough
objects have survived the young generations, which a tick's new entries do: at 10,000
targets that was five passes of 30-75 ms each in the middle of the first tick, each one in
front of every request waiting. `FullCollections.defer()` takes full passes off that
trigger (the young generations are collected as before) and the monitor runs one with
`collect()` after each tick instead: one pause per interval, when no fetch is in flight, and
cyclic garbage that reached the old generation waits at most one interval.

Process-wide state: one owner per process (`conveyor serve` hands one to its Monitor);
`restore()` puts CPython's thresholds back. No I/O.
"""

from __future__ import annotations

import gc
import time

__all__ = ["FullCollections"]

# The oldest generation's threshold counts collections of the middle one; this many never
# come within a process's lifetime (a C int).
_NEVER = 2**31 - 1


class FullCollections:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None

    @property
    def is_deferred(self) -> bool:
        return self._saved is not None

    def defer(self) -> None:
        """Full passes run only when `collect()` asks from now on."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, _NEVER)

    def collect(self) -> float:
        """One full pass now; its pause in seconds."""
        started = time.perf_counter()
        gc.collect()
        return time.perf_counter() - started

    def restore(self) -> None:
        """CPython's own trigger again."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
