"""Planner properties: the order respects every edge; every excluded job has a reason."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import ConfigError
from conveyor.model import Event, EventKind, Job, Mark, Need, Pipeline, Rule, Step
from conveyor.plan import plan

STAGES = ("build", "test", "deploy")


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    count = draw(st.integers(1, 12))
    jobs = []
    stage_of: list[int] = []
    for index in range(count):
        stage_of.append(draw(st.integers(0, len(STAGES) - 1)))
        needs = None
        # needs point to earlier jobs of the same or an earlier stage (what parsers accept)
        allowed = [t for t in range(index) if stage_of[t] <= stage_of[index]]
        if draw(st.booleans()) and allowed:
            targets = draw(st.lists(st.sampled_from(allowed), max_size=3, unique=True))
            needs = tuple(Need(f"j{t}", optional=draw(st.booleans())) for t in targets)
        rules = None
        if draw(st.booleans()):
            events = draw(st.sets(st.sampled_from(list(EventKind)), min_size=1))
            rules = (Rule(events=frozenset(events), refs=draw(st.sampled_from([None, ("main",)]))),)
        jobs.append(
            Job(
                name=f"j{index}",
                stage=STAGES[stage_of[index]],
                steps=(Step("s", "x"),),
                mark=Mark("p.yml", index + 1, 1),
                needs=needs,
                rules=rules,
            )
        )
    return Pipeline("p", "p.yml", tuple(jobs), stages=STAGES)


@settings(max_examples=200, deadline=None)
@given(pipelines(), st.sampled_from(list(EventKind)), st.sampled_from(["main", "dev"]))
def test_plan_order_respects_edges_and_exclusions_have_reasons(
    pipeline: Pipeline, kind: EventKind, ref: str
) -> None:
    try:
        result = plan(pipeline, Event(kind, ref=ref))
    except ConfigError as exc:
        assert "which is not in this pipeline" in str(exc)
        return
    position = {planned.name: index for index, planned in enumerate(result.jobs)}
    for planned in result.jobs:
        for dependency in planned.depends_on:
            assert position[dependency] < position[planned.name]
    assert all(item.reason for item in result.excluded)
    assert len(result.jobs) + len(result.excluded) == len(pipeline.jobs)
