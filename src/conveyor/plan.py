"""Pipeline + Event -> Plan: which jobs run, in what order, and why the others do not. Pure.

Owns: workflow rules, the pipeline's `on` events, each job's rules (first matching rule
decides; `when: never` or no match excludes the job with a precise reason), the DAG edges
(needs, or every planned job of earlier stages), whose artifacts each job receives, and a
topological order that is stable by file order. Works for both flavors.
Must not: read files, the clock or the environment, or run anything.

Variables seen by `if` expressions, lowest precedence first: predefined
(`variables.pipeline_variables`) < pipeline env < workflow rule variables < job env <
event variables (`--var`, API). Values referring to other variables (`$CI_COMMIT_REF_NAME`)
are expanded for evaluation; Plan.variables keeps them as written (the engine expands).
`changes` holds when Event.changed_files is None, and for GitLab tag pipelines (as GitLab
documents); `exists` holds when Event.files is None.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from conveyor.config.dag import topological_order
from conveyor.config.expr import ExprError, evaluate, expand
from conveyor.errors import ConfigError, Problem
from conveyor.globs import match_any
from conveyor.model import Event, EventKind, Excluded, Job, Pipeline, Plan, PlannedJob, Rule, When
from conveyor.variables import merged, pipeline_variables

__all__ = ["plan", "rule_mismatch"]


def _quoted_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def _expanded(values: Mapping[str, str], context: Mapping[str, str]) -> dict[str, str]:
    return {name: expand(value, context) for name, value in values.items()}


def rule_mismatch(rule: Rule, event: Event, variables: Mapping[str, str]) -> str | None:
    """None when every condition of `rule` holds, else why the first one does not."""
    if rule.events is not None and event.kind not in rule.events:
        names = [str(kind) for kind in EventKind if kind in rule.events]
        return f"event {event.kind} not in on: [{', '.join(names)}]"
    if rule.refs is not None and not any(fnmatch.fnmatchcase(event.ref, p) for p in rule.refs):
        return f"ref {json.dumps(event.ref)} matches none of {_quoted_list(rule.refs)}"
    if (
        rule.changes is not None
        and event.changed_files is not None
        and not match_any(rule.changes, event.changed_files)
    ):
        return f"no changed file matches {_quoted_list(rule.changes)}"
    if (
        rule.exists is not None
        and event.files is not None
        and not match_any(rule.exists, event.files)
    ):
        return f"no file matches {_quoted_list(rule.exists)}"
    if rule.if_expr is not None:
        try:
            holds = evaluate(rule.if_expr, variables)
        except ExprError as exc:
            return f"if {json.dumps(rule.if_expr)} is not a valid expression ({exc})"
        if not holds:
            return f"if {json.dumps(rule.if_expr)} is false"
    return None


def _rule_place(rule: Rule, index: int) -> str:
    return f"rule at line {rule.mark.line}" if rule.mark else f"rule {index + 1}"


def _match_rules(
    rules: Sequence[Rule], event: Event, variables: Mapping[str, str]
) -> tuple[Rule | None, str]:
    """(the first matching rule, "") or (None, why none matched / why it says never)."""
    reasons: list[str] = []
    for index, rule in enumerate(rules):
        reason = rule_mismatch(rule, event, variables)
        if reason is None:
            if rule.when is When.NEVER:
                return None, f"{_rule_place(rule, index)} says when: never"
            return rule, ""
        reasons.append(reason)
    if len(reasons) == 1:
        return None, reasons[0]
    if not reasons:
        return None, "no rule matched (rules is empty)"
    return None, "no rule matched: " + "; ".join(reasons)


def _workflow(
    pipeline: Pipeline, event: Event, base: Mapping[str, str]
) -> tuple[str | None, dict[str, str]]:
    """(why the whole pipeline is excluded, or None; the workflow rule's variables)."""
    if pipeline.events is not None and event.kind not in pipeline.events:
        names = [str(kind) for kind in EventKind if kind in pipeline.events]
        return f"event {event.kind} not in the pipeline's on: [{', '.join(names)}]", {}
    if pipeline.workflow is None:
        return None, {}
    rule, reason = _match_rules(pipeline.workflow, event, base)
    if rule is None:
        return f"workflow rules excluded the pipeline: {reason}", {}
    return None, dict(rule.variables)


def _decide(job: Job, event: Event, context: Mapping[str, str]) -> tuple[Rule | None, str | None]:
    """(matching rule or None, exclusion reason or None)."""
    if job.rules is None:
        return None, ("when: never" if job.when is When.NEVER else None)
    needs_vars = any(rule.if_expr is not None for rule in job.rules)
    variables = merged(context, _expanded(job.env, context), event.variables) if needs_vars else {}
    rule, reason = _match_rules(job.rules, event, variables)
    return rule, (reason if rule is None else None)


def _planned(job: Job, rule: Rule | None) -> PlannedJob:
    if rule is None:
        return PlannedJob(job, (), (), job.when, job.allow_failure, {}, job.start_in_s)
    return PlannedJob(
        job=job,
        depends_on=(),
        artifacts_from=(),
        when=rule.when,
        allow_failure=job.allow_failure if rule.allow_failure is None else rule.allow_failure,
        variables=dict(rule.variables),
        start_in_s=rule.start_in_s if rule.start_in_s is not None else job.start_in_s,
    )


def _stage_index(pipeline: Pipeline) -> dict[str, int]:
    order = {stage: index for index, stage in enumerate(pipeline.stages)}
    for job in pipeline.jobs:
        order.setdefault(job.stage, len(order))
    return order


def _edges(
    pipeline: Pipeline, included: dict[str, PlannedJob], excluded: dict[str, str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """(depends_on, artifacts_from) per planned job; a hard need on an excluded job is a
    ConfigError, as GitLab refuses such a pipeline."""
    stage_of = _stage_index(pipeline)
    by_stage: dict[int, list[str]] = {}
    for name, planned in included.items():
        by_stage.setdefault(stage_of[planned.job.stage], []).append(name)
    depends: dict[str, tuple[str, ...]] = {}
    artifacts: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for name, planned in included.items():
        job = planned.job
        if job.needs is None:
            stage = stage_of[job.stage]
            earlier = [n for index in sorted(by_stage) if index < stage for n in by_stage[index]]
            depends[name] = tuple(earlier)
            from_needs = depends[name]
        else:
            kept = []
            for need in job.needs:
                if need.job in included:
                    kept.append(need)
                elif not need.optional:
                    why = excluded.get(need.job, "not defined")
                    problems.append(_need_problem(pipeline.file, job, need.job, why))
            depends[name] = tuple(need.job for need in kept)
            from_needs = tuple(need.job for need in kept if need.artifacts)
        if job.dependencies is not None:
            artifacts[name] = tuple(dep for dep in job.dependencies if dep in included)
        else:
            artifacts[name] = from_needs
    if problems:
        raise ConfigError(problems)
    return depends, artifacts


def _need_problem(file: str, job: Job, target: str, why: str) -> Problem:
    return Problem(
        file,
        job.mark.line,
        job.mark.col,
        f'job "{job.name}" needs "{target}", which is not in this pipeline ({why}); '
        f"make the need optional or give both jobs the same conditions",
    )


def plan(pipeline: Pipeline, event: Event) -> Plan:
    """Decide the jobs of `pipeline` for `event`. Raises ConfigError when a job needs (not
    optionally) a job that its conditions excluded."""
    seen = event
    if pipeline.flavor == "gitlab" and event.kind is EventKind.TAG:
        # GitLab: a tag pipeline has no push diff, so `rules:changes` always holds there.
        seen = replace(event, changed_files=None)
    predefined = pipeline_variables(pipeline, event)
    written = merged(predefined, pipeline.env)
    context = merged(predefined, _expanded(pipeline.env, predefined), event.variables)
    workflow_excluded, workflow_vars = _workflow(pipeline, seen, context)
    variables = merged(written, workflow_vars, event.variables)
    if workflow_excluded is not None:
        return Plan(pipeline, event, (), (), variables, workflow_excluded)
    context = merged(context, _expanded(workflow_vars, context), event.variables)
    included: dict[str, PlannedJob] = {}
    excluded: dict[str, str] = {}
    for job in pipeline.jobs:
        rule, reason = _decide(job, seen, context)
        if reason is not None:
            excluded[job.name] = reason
        else:
            included[job.name] = _planned(job, rule)
    depends, artifacts = _edges(pipeline, included, excluded)
    try:
        order = topological_order(list(included), depends)
    except ValueError as exc:
        raise ConfigError([Problem(pipeline.file, 0, 0, str(exc))]) from None
    jobs = tuple(
        PlannedJob(
            job=included[name].job,
            depends_on=depends[name],
            artifacts_from=artifacts[name],
            when=included[name].when,
            allow_failure=included[name].allow_failure,
            variables=included[name].variables,
            start_in_s=included[name].start_in_s,
        )
        for name in order
    )
    return Plan(
        pipeline=pipeline,
        event=event,
        jobs=jobs,
        excluded=tuple(Excluded(name, reason) for name, reason in excluded.items()),
        variables=variables,
    )
