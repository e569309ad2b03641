"""Unit tests of conveyor.engine.selection."""

from __future__ import annotations

import pytest

from conveyor.engine.selection import select_jobs
from conveyor.errors import UsageError
from conveyor.model import Event, Excluded, Job, Mark, Pipeline, Plan, PlannedJob, Step, When

MARK = Mark(".conveyor.yml", 1, 1)


def _planned(name: str, deps: tuple[str, ...] = (), base: str = "") -> PlannedJob:
    job = Job(name=name, stage="s", steps=(Step("x", "true"),), mark=MARK, base_name=base)
    return PlannedJob(job, deps, (), When.ON_SUCCESS, False)


def _plan() -> Plan:
    jobs = (
        _planned("build"),
        _planned("lint"),
        _planned("test [PY=3.11]", ("build",), base="test"),
        _planned("test [PY=3.12]", ("build",), base="test"),
        _planned("deploy", ("test [PY=3.11]", "test [PY=3.12]")),
    )
    pipeline = Pipeline("p", ".conveyor.yml", tuple(p.job for p in jobs))
    return Plan(pipeline, Event(), jobs, excluded=(Excluded("docs", "ref does not match"),))


def test_select_jobs_without_names_keeps_plan() -> None:
    plan = _plan()
    assert (plan, frozenset()) == select_jobs(plan, [])


def test_select_jobs_keeps_transitive_dependencies() -> None:
    plan, played = select_jobs(_plan(), ["deploy"])
    assert [p.name for p in plan.jobs] == ["build", "test [PY=3.11]", "test [PY=3.12]", "deploy"]
    assert frozenset({"deploy"}) == played


def test_select_jobs_matches_base_name() -> None:
    _, played = select_jobs(_plan(), ["test"])
    assert frozenset({"test [PY=3.11]", "test [PY=3.12]"}) == played


def test_select_jobs_unknown_name_suggests() -> None:
    with pytest.raises(UsageError, match="did you mean 'build'"):
        select_jobs(_plan(), ["biuld"])


def test_select_jobs_unknown_name_without_match() -> None:
    with pytest.raises(UsageError, match="see `conveyor plan`"):
        select_jobs(_plan(), ["zzzzzz"])


def test_select_jobs_excluded_name_says_why() -> None:
    with pytest.raises(UsageError, match="ref does not match"):
        select_jobs(_plan(), ["docs"])
