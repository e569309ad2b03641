"""`--job NAME`: cut a Plan down to the named jobs and everything they depend on.

A name matches a job's name or, for matrix and parallel jobs, its name before expansion
(`--job test` selects every `test [PY=…]`). Named manual jobs are played. Pure: a Plan in,
a Plan out; unknown names raise UsageError with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from conveyor.errors import UsageError
from conveyor.model import Plan
from conveyor.suggest import closest_name

__all__ = ["select_jobs"]


def select_jobs(plan: Plan, names: Sequence[str]) -> tuple[Plan, frozenset[str]]:
    """The plan restricted to `names` and their transitive dependencies, and the set of
    selected job names (to play, when manual)."""
    if not names:
        return plan, frozenset()
    by_name = {p.name: p for p in plan.jobs}
    chosen: set[str] = set()
    for name in names:
        matches = [p.name for p in plan.jobs if name in (p.name, p.job.base_name)]
        if not matches:
            raise UsageError(_unknown(plan, name))
        chosen.update(matches)
    keep: set[str] = set()
    todo = list(chosen)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        todo.extend(d for d in by_name[name].depends_on if d in by_name)
    jobs = tuple(p for p in plan.jobs if p.name in keep)
    return replace(plan, jobs=jobs), frozenset(chosen)


def _unknown(plan: Plan, name: str) -> str:
    planned = [p.name for p in plan.jobs]
    excluded = {e.name: e.reason for e in plan.excluded}
    if name in excluded:
        return f"--job {name}: the job is not in this run ({excluded[name]})"
    close = closest_name(name, planned)
    hint = f" (did you mean {close!r}?)" if close else " (see `conveyor plan`)"
    return f"--job {name}: no such job in the plan{hint}"
