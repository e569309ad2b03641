"""When CPython's cyclic garbage collector runs in a process that watches targets.

A monitor of thousands of targets holds hundreds of thousands of long-lived objects
(entries, pipelines, history). CPython collects by allocation counts, which suits objects
that die young; a tick's new entries do not. Measured at 10,000 targets (docs/benchmarks.md),
the first tick, which builds every entry, ran five full passes of 30-75 ms and a
middle-generation pass of 2-3 ms every 0.3 s, each one in front of every request waiting.
So, in `conveyor serve`:

- `defer()`: full passes are taken off CPython's trigger (the young generations are
  collected as before) while the monitor runs; it runs one with `collect()` after each tick
  instead, when no fetch is in flight. Cyclic garbage that reached the old generation waits
  at most one interval.
- `pause()` / `resume()`: no automatic collection at all, for the first tick: every object
  it makes is an entry, its pipelines or their history, which all survive, so scanning them
  again and again finds nothing. Its cyclic garbage (failed fetches' connections, for one)
  waits for the tick's end.

Process-wide state: one owner per process; `restore()` hands CPython back its own
settings. No I/O.
"""

from __future__ import annotations

import gc
import time

__all__ = ["Collector"]

# The oldest generation's threshold counts collections of the middle one; this many never
# come within a process's lifetime (a C int).
_NEVER = 2**31 - 1


class Collector:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._was_enabled: bool | None = None

    @property
    def is_deferred(self) -> bool:
        return self._saved is not None

    def defer(self) -> None:
        """Full passes run only when `collect()` asks from now on."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, _NEVER)

    def pause(self) -> None:
        """No automatic collection until `resume()`."""
        if self._was_enabled is None:
            self._was_enabled = gc.isenabled()
            gc.disable()

    def resume(self) -> None:
        if self._was_enabled is not None:
            if self._was_enabled:
                gc.enable()
            self._was_enabled = None

    def collect(self) -> float:
        """One full pass now; its pause in seconds."""
        started = time.perf_counter()
        gc.collect()
        return time.perf_counter() - started

    def restore(self) -> None:
        """CPython's own trigger again."""
        self.resume()
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
