"""Runner tags on the attempt spec: expanded as GitLab does, and carried across JSON."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.engine.attempt import RunContext, attempt_spec, inherited_names, runner_tags
from conveyor.engine.executor import (
    AttemptSpec,
    WorkspaceSource,
    attempt_spec_from_dict,
    attempt_spec_to_dict,
)
from conveyor.masking import Masker
from conveyor.model import Event, Job, Mark, Pipeline, Plan, PlannedJob, Step, When
from tests.fakes.executor import ScriptedExecutor
from tests.fakes.memory_logs import MemoryLogs


def _spec(**changes: object) -> AttemptSpec:
    workspace = WorkspaceSource("/w", False, "", "/w")
    spec = AttemptSpec("r1", "build", 1, 1, workspace, {}, (Step("s", "true"),))
    return spec._replace(**changes)


def test_runner_tags_expand_known_variables_and_keep_unknown_ones() -> None:
    env = {"OS": "linux", "EMPTY": ""}
    assert runner_tags(("os-$OS", "${ARCH}", "docker", "$EMPTY", "os-linux"), env) == (
        "os-linux",
        "${ARCH}",
        "docker",
    )


def test_runner_tags_without_variables_stay_as_written() -> None:
    assert runner_tags(("gpu", "linux"), {}) == ("gpu", "linux")


def test_attempt_spec_tags_round_trip_through_json() -> None:
    spec = _spec(tags=("docker", "linux"))
    assert attempt_spec_from_dict(json.loads(json.dumps(attempt_spec_to_dict(spec)))) == spec


def test_attempt_spec_from_dict_without_tags_has_none() -> None:
    data = attempt_spec_to_dict(_spec())
    del data["tags"]
    assert attempt_spec_from_dict(data).tags == ()


def test_attempt_spec_carries_the_jobs_tags_expanded(tmp_path: Path) -> None:
    job = Job(
        name="build",
        stage="test",
        steps=(Step("s", "true"),),
        mark=Mark("p.yml", 1, 1),
        env={"OS": "linux"},
        tags=("os-$OS", "$TARGET", "$MISSING"),
    )
    pipeline = Pipeline(name="p", file="p.yml", jobs=(job,))
    event = Event(sha="abc", variables={"TARGET": "arm64"})
    planned = PlannedJob(job, (), (), When.ON_SUCCESS, False)
    ctx = RunContext(
        plan=Plan(pipeline, event, (planned,)),
        run_id="r1",
        run_number=1,
        logs=MemoryLogs(),
        workspace=tmp_path,
        run_dir=tmp_path / "run",
        secrets={},
        base_env={},
        executor=ScriptedExecutor(),
        masker=Masker(()),
        observer=None,
    )
    spec = attempt_spec(ctx, planned, attempt=1, job_number=1, first_line=1)
    assert spec.tags == ("os-linux", "arm64", "$MISSING")


def test_inherited_names_are_the_base_values_the_pipeline_left_alone() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/home/ci", "LANG": "C", "API_TOKEN": "x"}
    env = {"PATH": "/usr/bin", "HOME": "/home/ci", "LANG": "C.UTF-8", "CI": "true"}
    assert inherited_names(env, base) == ("PATH", "HOME")  # LANG set again; a token never


def test_attempt_spec_inherited_round_trips_through_json() -> None:
    spec = _spec(inherited=("PATH", "HOME"))
    assert attempt_spec_from_dict(json.loads(json.dumps(attempt_spec_to_dict(spec)))) == spec
