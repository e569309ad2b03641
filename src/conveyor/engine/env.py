"""The environment of a job's steps, built in the precedence documented in variables.py.

Lowest first: a safe base of conveyor's own environment (PATH, HOME, USER, LANG, LC_*, TERM,
TZ, TMPDIR, SHELL — never anything else, so a server's tokens do not leak into jobs) <
predefined variables < pipeline env < plan variables (workflow rules) < job env < rule
variables < step env < event variables (--var, API) < the job's declared secrets.

Values written in the pipeline expand `$VAR` / `${VAR}` against what is defined before them
(`expr.expand`). Values from outside — the event (ref, sha, message), user variables and
secrets — are inserted verbatim and reach commands only as environment variables, never as
command text. Pure: conveyor's environment and the secret values come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.config.expr import expand
from conveyor.model import Plan, PlannedJob, Step
from conveyor.variables import job_variables, pipeline_variables

__all__ = ["SAFE_BASE_NAMES", "job_environment", "safe_base", "step_environment"]

SAFE_BASE_NAMES = frozenset({"PATH", "HOME", "USER", "LANG", "TERM", "TZ", "TMPDIR", "SHELL"})


def safe_base(env: Mapping[str, str]) -> dict[str, str]:
    """The part of conveyor's environment a job may inherit."""
    return {k: v for k, v in env.items() if k in SAFE_BASE_NAMES or k.startswith("LC_")}


def _expand_into(target: dict[str, str], layer: Mapping[str, str]) -> None:
    for key, value in layer.items():
        target[key] = expand(value, target)


def job_environment(
    plan: Plan,
    planned: PlannedJob,
    *,
    base_env: Mapping[str, str],
    run_id: str,
    pipeline_number: int,
    job_number: int,
    attempt: int,
    project_dir: str,
) -> dict[str, str]:
    """Everything up to the rule variables (step env, event variables and secrets are added
    per step by `step_environment`)."""
    env = safe_base(base_env)
    env.update(pipeline_variables(plan.pipeline, plan.event))
    env.update(
        job_variables(
            plan.pipeline,
            planned,
            run_id=run_id,
            pipeline_number=pipeline_number,
            job_number=job_number,
            attempt=attempt,
            project_dir=project_dir,
        )
    )
    # GitLab `inherit:variables`: only the pipeline-level variables the job inherits.
    inherits = planned.job.inherits_variable
    _expand_into(env, {k: v for k, v in plan.pipeline.env.items() if inherits(k)})
    _expand_into(env, {k: v for k, v in plan.variables.items() if inherits(k)})
    _expand_into(env, planned.job.env)
    _expand_into(env, planned.variables)
    return env


def step_environment(
    job_env: Mapping[str, str],
    step: Step,
    *,
    event_variables: Mapping[str, str],
    secrets: Mapping[str, str],
) -> dict[str, str]:
    """The job environment plus the step's env (expanded), then the event's variables and
    the secrets, verbatim."""
    env = dict(job_env)
    _expand_into(env, step.env)
    env.update(event_variables)
    env.update(secrets)
    return env
