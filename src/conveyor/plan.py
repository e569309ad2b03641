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
documents); `exists` holds when Event.files is None. A job receives only the pipeline-level
variables (Pipeline.env, workflow rule variables) that its `inherit_variables` allows.

GitLab `rules:changes:compare_to` compares with the paths in Event.changes_by_ref (found by
the edge for the refs `compare_to_refs` names; None: not looked up, so the rule holds, on
every event). The ref expands `$VAR` with predefined, pipeline and job variables and the
event's (not workflow rule variables, which depend on rules the edge cannot evaluate). A
ref the edge could not resolve refuses the pipeline, as GitLab does. A matching rule's
`needs` replace the job's.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.config.conditions import rule_mismatch
from conveyor.config.dag import topological_order
from conveyor.config.expr import expand
from conveyor.errors import ConfigError, Problem
from conveyor.model import Event, EventKind, Excluded, Job, Pipeline, Plan, PlannedJob, Rule, When
from conveyor.variables import merged, pipeline_variables

__all__ = ["compare_to_refs", "plan"]


def _expanded(values: Mapping[str, str], context: Mapping[str, str]) -> dict[str, str]:
    return {name: expand(value, context) for name, value in values.items()}


def _rule_place(rule: Rule, index: int) -> str:
    return f"rule at line {rule.mark.line}" if rule.mark else f"rule {index + 1}"


def _match_rules(
    rules: Sequence[Rule],
    event: Event,
    variables: Mapping[str, str],
    ref_context: Mapping[str, str],
    where: str,
) -> tuple[Rule | None, str]:
    """(the first matching rule, "") or (None, why none matched / why it says never)."""
    reasons: list[str] = []
    for index, rule in enumerate(rules):
        reason = rule_mismatch(rule, event, variables, ref_context=ref_context, where=where)
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
    globs = pipeline.event_branches.get(event.kind)
    if globs:
        change = event.change
        branch = change.target_branch if change is not None else event.ref
        if not any(fnmatch.fnmatchcase(branch, glob) for glob in globs):
            what = "target branch" if change is not None else "ref"
            listed = ", ".join(json.dumps(glob) for glob in globs)
            return (
                f"{what} {json.dumps(branch)} matches none of on.{event.kind}.branches: [{listed}]",
                {},
            )
    if pipeline.workflow is None:
        return None, {}
    rule, reason = _match_rules(pipeline.workflow, event, base, base, "workflow:rules")
    if rule is None:
        return f"workflow rules excluded the pipeline: {reason}", {}
    return None, dict(rule.variables)


@dataclass(frozen=True, slots=True)
class _Scope:
    """The values rules are evaluated with: predefined variables, the pipeline-level
    variables (expanded; before and after workflow rule variables), the event's."""

    predefined: Mapping[str, str]
    pipeline_vars: Mapping[str, str]
    with_workflow: Mapping[str, str]
    event_vars: Mapping[str, str]

    def job_context(self, job: Job, *, with_workflow: bool = True) -> dict[str, str]:
        """What a job's `if` (and, without workflow variables, `compare_to`) sees."""
        pipeline_vars = self.with_workflow if with_workflow else self.pipeline_vars
        if job.inherit_variables is not True:
            pipeline_vars = {k: v for k, v in pipeline_vars.items() if job.inherits_variable(k)}
        context = merged(self.predefined, pipeline_vars, self.event_vars)
        return merged(context, _expanded(job.env, context), self.event_vars)


def _scope(pipeline: Pipeline, event: Event) -> _Scope:
    predefined = pipeline_variables(pipeline, event)
    pipeline_vars = _expanded(pipeline.env, predefined)
    return _Scope(predefined, pipeline_vars, pipeline_vars, event.variables)


def compare_to_refs(pipeline: Pipeline, event: Event) -> tuple[str, ...]:
    """The refs (expanded) that the pipeline's `rules:changes:compare_to` name, in file
    order: the edge looks up their changed files into Event.changes_by_ref."""
    scope = _scope(pipeline, event)
    refs: dict[str, None] = {}
    base = merged(scope.predefined, scope.pipeline_vars, scope.event_vars)
    for rule in pipeline.workflow or ():
        if rule.compare_to is not None:
            refs[expand(rule.compare_to, base)] = None
    for job in pipeline.jobs:
        wanted = [rule.compare_to for rule in job.rules or () if rule.compare_to is not None]
        if wanted:
            context = scope.job_context(job, with_workflow=False)
            refs.update(dict.fromkeys(expand(ref, context) for ref in wanted))
    return tuple(refs)


def _decide(job: Job, event: Event, scope: _Scope) -> tuple[Rule | None, str | None]:
    """(matching rule or None, exclusion reason or None)."""
    if job.rules is None:
        return None, ("when: never" if job.when is When.NEVER else None)
    needs_vars = any(
        rule.if_expr is not None or any("$" in path for path in rule.exists or ())
        for rule in job.rules
    )
    variables = scope.job_context(job) if needs_vars else {}
    ref_context: Mapping[str, str] = {}
    if any(rule.compare_to is not None and "$" in rule.compare_to for rule in job.rules):
        ref_context = scope.job_context(job, with_workflow=False)
    rule, reason = _match_rules(job.rules, event, variables, ref_context, f'job "{job.name}"')
    return rule, (reason if rule is None else None)


def _planned(job: Job, rule: Rule | None) -> PlannedJob:
    if rule is None:
        return PlannedJob(job, (), (), job.when, job.allow_failure, {}, job.start_in_s)
    return PlannedJob(
        job=job if rule.needs is None else replace(job, needs=rule.needs),
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
    scope = _scope(pipeline, event)
    written = merged(scope.predefined, pipeline.env)
    context = merged(scope.predefined, scope.pipeline_vars, event.variables)
    workflow_excluded, workflow_vars = _workflow(pipeline, seen, context)
    variables = merged(written, workflow_vars, event.variables)
    if workflow_excluded is not None:
        return Plan(pipeline, event, (), (), variables, workflow_excluded)
    scope = replace(
        scope, with_workflow=merged(scope.pipeline_vars, _expanded(workflow_vars, context))
    )
    included: dict[str, PlannedJob] = {}
    excluded: dict[str, str] = {}
    for job in pipeline.jobs:
        rule, reason = _decide(job, seen, scope)
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
