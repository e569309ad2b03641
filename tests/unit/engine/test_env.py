"""Unit tests of conveyor.engine.env: precedence, expansion, and what never leaks in."""

from __future__ import annotations

from conveyor.engine.env import job_environment, safe_base, step_environment
from conveyor.model import Event, EventKind, Job, Mark, Pipeline, Plan, PlannedJob, Step, When

MARK = Mark(".conveyor.yml", 1, 1)


def _plan(
    *,
    pipeline_env: dict[str, str],
    job_env: dict[str, str],
    rule_vars: dict[str, str],
    plan_vars: dict[str, str] | None = None,
) -> tuple[Plan, PlannedJob]:
    job = Job(name="build", stage="test", steps=(Step("s", "true"),), mark=MARK, env=job_env)
    pipeline = Pipeline(name="p", file=".conveyor.yml", jobs=(job,), env=pipeline_env)
    planned = PlannedJob(job, (), (), When.ON_SUCCESS, False, variables=rule_vars)
    event = Event(kind=EventKind.PUSH, ref="main", sha="abc123", message="$(rm -rf /)")
    return Plan(pipeline, event, (planned,), variables=plan_vars or {}), planned


def _job_env(plan: Plan, planned: PlannedJob, base: dict[str, str]) -> dict[str, str]:
    return job_environment(
        plan,
        planned,
        base_env=base,
        run_id="r1",
        pipeline_number=7,
        job_number=3,
        attempt=2,
        project_dir="/w",
    )


def test_safe_base_keeps_only_harmless_names() -> None:
    base = {"PATH": "/bin", "LC_ALL": "C", "GITHUB_TOKEN": "x", "AWS_SECRET": "y", "HOME": "/h"}
    assert safe_base(base) == {"PATH": "/bin", "LC_ALL": "C", "HOME": "/h"}


def test_job_environment_has_predefined_variables() -> None:
    plan, planned = _plan(pipeline_env={}, job_env={}, rule_vars={})
    env = _job_env(plan, planned, {})
    assert (
        env["CI"],
        env["CONVEYOR_RUN_ID"],
        env["CONVEYOR_JOB"],
        env["CONVEYOR_ATTEMPT"],
        env["CONVEYOR_REF"],
        env["CONVEYOR_SHA"],
    ) == ("true", "r1", "build", "2", "main", "abc123")


def test_job_environment_precedence_and_expansion() -> None:
    plan, planned = _plan(
        pipeline_env={"A": "pipe", "B": "pipe", "C": "pipe", "BASE": "/opt"},
        plan_vars={"B": "plan"},
        job_env={"C": "job", "BIN": "${BASE}/bin:$PATH"},
        rule_vars={"C": "rule"},
    )
    env = _job_env(plan, planned, {"PATH": "/usr/bin", "SECRET_TOKEN": "leak"})
    assert (
        env["A"],
        env["B"],
        env["C"],
        env["BIN"],
        env.get("SECRET_TOKEN"),
    ) == ("pipe", "plan", "rule", "/opt/bin:/usr/bin", None)


def test_job_environment_never_expands_event_values_into_text() -> None:
    plan, planned = _plan(pipeline_env={"MSG": "$CONVEYOR_REF"}, job_env={}, rule_vars={})
    env = _job_env(plan, planned, {})
    assert env["MSG"] == "main"


def test_step_environment_layers_step_event_and_secrets() -> None:
    job_env = {"A": "job", "B": "job", "C": "job", "D": "job"}
    step = Step("s", "true", env={"A": "step-$D", "B": "step", "C": "step"})
    env = step_environment(
        job_env, step, event_variables={"B": "event", "C": "$A"}, secrets={"C": "secret"}
    )
    assert env == {"A": "step-job", "B": "event", "C": "secret", "D": "job"}
