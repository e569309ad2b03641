"""Unit tests of server.ui.graph: stage columns, which needs become edges, and their
curves."""

from __future__ import annotations

from conveyor.model import JobRecord, Status
from conveyor.server.ui.graph import BOX_H, BOX_W, MAX_STAGE_FAN, job_graph
from conveyor.server.ui.views import group_by_stage


def job(name: str, stage: str, *needs: str) -> JobRecord:
    return JobRecord(name=name, stage=stage, status=Status.SUCCESS, needs=needs)


def edges_of(*jobs: JobRecord) -> list[tuple[str, str]]:
    return [(e.need, e.job) for e in job_graph(group_by_stage(jobs)).edges]


def test_graph_puts_each_stage_in_a_column_and_its_jobs_in_rows() -> None:
    graph = job_graph(group_by_stage([job("a", "build"), job("b", "build"), job("t", "test")]))
    places = {box.job.name: (box.x, box.y) for box in graph.boxes}
    assert [c.stage for c in graph.columns] == ["build", "test"]
    assert places["a"][0] == places["b"][0] < places["t"][0]
    assert places["a"][1] < places["b"][1]
    assert places["a"][1] == places["t"][1]
    assert graph.width >= places["t"][0] + BOX_W
    assert graph.height >= places["b"][1] + BOX_H


def test_graph_draws_stage_order_from_the_stage_just_before() -> None:
    # No `needs:`: the plan records every job of the earlier stages as its needs.
    jobs = (
        job("a", "build"),
        job("b", "build"),
        job("t", "test", "a", "b"),
        job("d", "deploy", "a", "b", "t"),
    )
    assert edges_of(*jobs) == [("a", "t"), ("b", "t"), ("t", "d")]


def test_graph_draws_no_stage_order_mesh_past_the_fan_limit() -> None:
    builds = [job(f"b{n}", "build") for n in range(MAX_STAGE_FAN + 1)]
    test = job("t", "test", *(b.name for b in builds))
    assert edges_of(*builds, test) == []


def test_graph_draws_one_edge_per_explicit_need() -> None:
    jobs = (
        job("a", "build"),
        job("b", "build"),
        job("t", "test", "a"),
        job("d", "deploy", "t", "b"),
    )
    assert edges_of(*jobs) == [("a", "t"), ("t", "d"), ("b", "d")]


def test_graph_curves_go_from_the_need_right_side_to_the_job_left_side() -> None:
    graph = job_graph(group_by_stage([job("a", "build"), job("t", "test", "a")]))
    boxes = {box.job.name: box for box in graph.boxes}
    path = graph.edges[0].path
    start = f"M{boxes['a'].x + BOX_W} {boxes['a'].text_y}C"
    assert path.startswith(start)
    assert path.endswith(f" {boxes['t'].x} {boxes['t'].text_y}")


def test_graph_edge_within_one_stage_bows_out_to_the_right() -> None:
    graph = job_graph(group_by_stage([job("a", "test"), job("b", "test", "a")]))
    a, b = graph.boxes
    right = a.x + BOX_W
    assert graph.edges[0].path.startswith(f"M{right} {a.text_y}C")
    assert graph.edges[0].path.endswith(f" {right} {b.text_y}")
    assert graph.width > right  # the bow stays inside the drawing


def test_graph_ignores_unknown_and_repeated_needs() -> None:
    assert edges_of(job("a", "build"), job("t", "test", "a", "a", "gone")) == [("a", "t")]


def test_graph_cuts_long_names_to_fit_a_box() -> None:
    name = "integration tests [PY=3.12, OS=linux/arm64]"
    (box,) = job_graph(group_by_stage([job(name, "a very long stage name indeed")])).boxes
    assert (len(box.label), box.label[-1], box.job.name) == (20, "…", name)
    assert job_graph(group_by_stage([job("x", "short")])).columns[0].label == "short"


def test_graph_of_no_jobs_is_empty() -> None:
    graph = job_graph(())
    assert (graph.boxes, graph.edges, graph.columns) == ((), (), ())


def test_graph_edge_past_a_column_runs_in_the_lane_under_the_row() -> None:
    graph = job_graph(
        group_by_stage(
            [job("a", "build"), job("b", "build"), job("t", "test", "a"), job("d", "deploy", "a")]
        )
    )
    a = graph.boxes[0]
    lane = a.y + BOX_H + (graph.boxes[1].y - a.y - BOX_H) // 2  # halfway to the next row
    past = next(e for e in graph.edges if e.job == "d")
    assert f" {lane}H" in past.path


def test_graph_edge_back_to_an_earlier_column_runs_in_the_lane_too() -> None:
    graph = job_graph(group_by_stage([job("t", "test", "c"), job("c", "build")]))
    t, c = graph.boxes
    lane = c.y + BOX_H + 7  # the lane under the need's row
    path = graph.edges[0].path
    assert path.startswith(f"M{c.x + BOX_W} {c.text_y}C")
    assert f" {lane}H" in path
    assert path.endswith(f" {t.x} {t.text_y}")
