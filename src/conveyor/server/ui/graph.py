"""The run page's job graph: jobs as boxes in one column per stage, and each `needs` edge
drawn as a curve from the needed job's box to the job's, laid out here so the page draws it
as plain SVG (no script, no layout library).

Explicit `needs` (a DAG across or within stages) get one edge each. A job whose `needs` are
every job of the stages before its own runs in stage order (that is how the plan records a
job without `needs:`, and the record cannot tell the two apart): it gets edges from the jobs
of the stage just before only, and only when that stage has at most `MAX_STAGE_FAN` jobs;
past that, a mesh of lines says less than the column order does (GitLab's stage view draws
none either).

An edge that passes columns runs in the empty lane between two rows of boxes, so it never
crosses a box; an edge between two jobs of one column bows out to the right of it. Long
names are cut (with `…`) to fit a box; the full name goes into the box's accessible name
(and its tooltip, for a cut name).

Pure: no I/O; sizes are SVG user units (CSS pixels at 100 % zoom).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conveyor.model import JobRecord
from conveyor.server.ui.views import Stage

__all__ = ["BOX_H", "BOX_W", "MAX_STAGE_FAN", "Box", "Column", "Edge", "Graph", "job_graph"]

MAX_STAGE_FAN = 4
BOX_W = 176
BOX_H = 28
_GAP_X = 56  # between columns: room for the curves
_GAP_Y = 14  # between rows: the lanes long edges run in
_PAD = 8
_LEFT = 28  # half a gap: room for an edge that comes back to the first column
_HEAD_H = 24  # a column's stage name
_MAX_LABEL = 20  # characters that fit a box at the page's font size
_BOW = 28  # how far an edge within one column bows out


@dataclass(frozen=True, slots=True)
class Box:
    """One job: its top-left corner, its record and its shortened label."""

    job: JobRecord
    x: int
    y: int
    label: str

    @property
    def text_y(self) -> int:
        return self.y + BOX_H // 2


@dataclass(frozen=True, slots=True)
class Column:
    """A stage: where its boxes go, and its shortened name."""

    stage: str
    x: int
    label: str


@dataclass(frozen=True, slots=True)
class Edge:
    """A need: from the box of `need` to the box of `job`, as an SVG path."""

    need: str
    job: str
    path: str


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    columns: tuple[Column, ...]
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


def job_graph(stages: Sequence[Stage]) -> Graph:
    """The graph of a run whose jobs are `stages` (`views.group_by_stage`)."""
    columns: list[Column] = []
    boxes: dict[str, Box] = {}
    earlier: set[str] = set()
    previous: tuple[str, ...] = ()
    drawn: dict[str, tuple[str, ...]] = {}
    rows = 0
    for index, stage in enumerate(stages):
        x = _LEFT + index * (BOX_W + _GAP_X)
        columns.append(Column(stage.name, x, _label(stage.name)))
        jobs = stage.jobs
        for row, job in enumerate(jobs):
            y = _PAD + _HEAD_H + row * (BOX_H + _GAP_Y)
            boxes[job.name] = Box(job, x, y, _label(job.name))
            if not job.needs:
                continue
            if set(job.needs) != earlier:
                drawn[job.name] = job.needs
            elif len(previous) <= MAX_STAGE_FAN:  # stage order (module docstring)
                drawn[job.name] = previous
        earlier.update(job.name for job in jobs)
        previous = tuple(job.name for job in jobs) or previous
        rows = max(rows, len(jobs))
    edges = tuple(
        Edge(need, name, _curve(boxes[need], boxes[name]))
        for name, needs in drawn.items()
        for need in _unique(needs)
        if need in boxes and need != name
    )
    width = _LEFT + _PAD + len(columns) * BOX_W + max(0, len(columns) - 1) * _GAP_X + _BOW
    height = _PAD * 2 + _HEAD_H + rows * (BOX_H + _GAP_Y)
    return Graph(width, height, tuple(columns), tuple(boxes.values()), edges)


def _label(name: str) -> str:
    return name if len(name) <= _MAX_LABEL else name[: _MAX_LABEL - 1] + "…"


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _curve(need: Box, job: Box) -> str:
    """A curve from the right side of `need` to the left side of `job`. Across one gap it is
    a single cubic Bézier; past columns in between (or back to an earlier column, when a
    stage listed later is needed) it runs along the free lane under the need's row (boxes
    sit in rows, so lanes are empty) and turns in the gaps between columns, so it crosses
    no box; between two boxes of one column it bows out to the right of it."""
    y1, y2 = need.text_y, job.text_y
    if need.x == job.x:
        x = need.x + BOX_W
        return f"M{x} {y1}C{x + _BOW} {y1} {x + _BOW} {y2} {x} {y2}"
    x1, x2 = need.x + BOX_W, job.x
    if 0 < x2 - x1 <= _GAP_X:
        bend = _GAP_X // 2
        return f"M{x1} {y1}C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"
    lane = need.y + BOX_H + _GAP_Y // 2
    bend = _GAP_X // 4
    xa, xb = x1 + _GAP_X // 2, x2 - _GAP_X // 2
    return (
        f"M{x1} {y1}C{x1 + bend} {y1} {xa - bend} {lane} {xa} {lane}"
        f"H{xb}C{xb + bend} {lane} {x2 - bend} {y2} {x2} {y2}"
    )
