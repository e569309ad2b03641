"""CPython's cyclic garbage collector during a monitor's first tick.

CPython collects by allocation counts, which suits objects that die young. The first tick
after start builds every entry: its pipelines, figures and history, about 16 tracked
objects per target that all survive. Measured at 10,000 targets (docs/benchmarks.md), the
collector scanned them again and again for nothing during that tick: five full passes of
30-75 ms and a middle-generation pass of 2-3 ms every 0.3 s, each one in front of every
request waiting. So `conveyor serve` pauses automatic collection for the first tick
(`pause(budget)`) and then `settle()`s: the tick's objects go to CPython's permanent
generation (`gc.freeze()`, as serve does with what it builds at start-up), where no
collection scans them again; they are freed as usual when an entry replaces them. A
healthy first tick makes no cyclic garbage (measured: a full pass after it freed nothing
and took 75 ms), so none is frozen; a tick that failed fetches gets a full pass first.
Later ticks make few new objects and are left to CPython.

A failing upstream is another matter: each failed fetch leaves about 150 objects of cyclic
garbage (exceptions and their frames, closed connections), 1.5 million and 200 MB for
10,000 failures. So the pause has a budget of new objects (`is_over_budget()`), and the
monitor also resumes collecting after a few failed fetches.

Process-wide state: one owner per process; `resume()` hands CPython back its own setting.
No I/O.
"""

from __future__ import annotations

import gc
import time

__all__ = ["Collector"]


class Collector:
    def __init__(self) -> None:
        self._was_enabled: bool | None = None
        self._budget = 0

    @property
    def is_paused(self) -> bool:
        return self._was_enabled is not None

    def pause(self, budget: int) -> None:
        """No automatic collection until `resume()`; `budget`: how many new tracked objects
        (CPython's count for the youngest generation) the pause is meant to allow."""
        if self._was_enabled is None:
            self._was_enabled = gc.isenabled()
            gc.collect(0)  # the count starts from nothing
            gc.disable()
            self._budget = budget

    def is_over_budget(self) -> bool:
        return self.is_paused and gc.get_count()[0] > self._budget

    def resume(self) -> None:
        """CPython's own trigger again (or none, if it was off before the pause)."""
        if self._was_enabled is not None:
            if self._was_enabled:
                gc.enable()
            self._was_enabled = None

    def settle(self, *, collect: bool) -> float:
        """Resume, then keep every object alive now out of the collector's way for good
        (`gc.freeze()`); with `collect`, after a full pass that frees the garbage among them.
        Returns the pause in seconds."""
        self.resume()
        started = time.perf_counter()
        if collect:
            gc.collect()
        gc.freeze()
        return time.perf_counter() - started
