"""The native pipeline format (`.conveyor.yml`): text -> validated Pipeline. Pure.

Owns: the top-level and job keys, defaults, matrix expansion, `needs` resolution and the
checks that involve several jobs (unknown needs, cycles, duplicate names, stages, a need on a
job that never runs for an event the needing job runs on). Every problem is collected and
raised at once as a ConfigError, sorted by position, each `FILE:LINE:COL: message`.
Must not: read files (config/__init__.py does), expand `env` values (the engine does, at
run time), or evaluate conditions against an event (plan.py does).
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field, replace

from conveyor.config.dag import find_cycles, format_cycle
from conveyor.config.native_fields import (
    ALL_EVENTS,
    read_artifacts,
    read_duration,
    read_names,
    read_on,
    read_retry,
    read_rule,
    read_steps,
    read_tags,
)
from conveyor.config.problems import Problems, Section
from conveyor.config.yamlload import (
    MarkedDict,
    MarkedList,
    find_duplicate_keys,
    load_yaml,
    type_name,
)
from conveyor.model import EventKind, Job, Mark, Need, Pipeline, Retry, When
from conveyor.suggest import did_you_mean

__all__ = ["DEFAULT_STAGE", "MAX_MATRIX_JOBS", "parse_native"]

TOP_KEYS = (
    "name", "on", "env", "secrets", "stages", "defaults", "fail_fast", "concurrency", "jobs",
)  # fmt: skip
DEFAULT_KEYS = ("timeout", "retry", "shell", "allow_failure", "tags")
JOB_KEYS = (
    "stage", "steps", "run", "needs", "env", "secrets", "timeout", "retry", "allow_failure",
    "manual", "when", "matrix", "artifacts", "workdir", "shell", "interruptible", "tags",
)  # fmt: skip
NEED_KEYS = ("job", "optional")
SHELLS = ("bash", "sh")
DEFAULT_STAGE = "default"
MAX_MATRIX_JOBS = 256


@dataclass(frozen=True, slots=True)
class _Defaults:
    timeout_s: float | None = None
    retry: Retry = field(default_factory=Retry)
    shell: str = "bash"
    allow_failure: bool = False
    tags: tuple[str, ...] = ()


@dataclass(slots=True)
class _Draft:
    """A job whose needs are still names as written (resolved once all jobs are known)."""

    job: Job
    needs: list[tuple[str, bool, Mark]] | None
    needs_label: str
    events: frozenset[EventKind]
    edges: list[tuple[str, bool, Mark]] = field(default_factory=list)


def parse_native(text: str, file: str) -> Pipeline:
    """Parse and validate a `.conveyor.yml` text; `file` is used in marks and messages."""
    problems = Problems(file)
    data = load_yaml(text, file)
    if not isinstance(data, MarkedDict):
        got = "an empty file" if data is None else type_name(data)
        problems.add(None, f"expected a mapping with a jobs: key at the top level, got {got}")
        raise problems.error()
    top = Section(data, "", problems)
    top.check_keys(TOP_KEYS)
    for key, mark in find_duplicate_keys(data):
        problems.add(mark, f'key "{key}" is written twice in this mapping (remove one)')
    events, event_branches = read_on(top, "on")
    stages = tuple(name for name, _ in top.text_list("stages", allow_single=False) or ())
    defaults = _read_defaults(top)
    drafts = _read_jobs(top, defaults, stages, events or ALL_EVENTS)
    jobs_stages = stages or tuple(dict.fromkeys(draft.job.stage for draft in drafts))
    _resolve_needs(drafts, jobs_stages, problems)
    jobs = tuple(draft.job for draft in drafts)
    pipeline = Pipeline(
        name=top.text("name") or posixpath.basename(file),
        file=file,
        jobs=jobs,
        flavor="native",
        stages=jobs_stages,
        events=events,
        event_branches=event_branches,
        env=top.text_mapping("env") or {},
        secrets=read_names(top, "secrets"),
        fail_fast=bool(top.boolean("fail_fast")),
        concurrency=top.integer("concurrency", minimum=1),
    )
    problems.raise_if_any()
    return pipeline


def _read_shell(section: Section) -> str | None:
    shell = section.text("shell")
    if shell is not None and shell not in SHELLS:
        section.report("shell", f'unknown shell "{shell}" (use bash or sh)')
        return None
    return shell


def _read_defaults(top: Section) -> _Defaults:
    section = top.section("defaults")
    if section is None:
        return _Defaults()
    section.check_keys(DEFAULT_KEYS)
    return _Defaults(
        timeout_s=read_duration(section, "timeout"),
        retry=read_retry(section, "retry") or Retry(),
        shell=_read_shell(section) or "bash",
        allow_failure=bool(section.boolean("allow_failure")),
        tags=read_tags(section, "tags") or (),
    )


def _read_jobs(
    top: Section, defaults: _Defaults, stages: tuple[str, ...], events: frozenset[EventKind]
) -> list[_Draft]:
    jobs = top.section("jobs")
    if jobs is None:
        if not top.has("jobs"):
            top.problems.add(top.mark, "missing key jobs (a mapping of job name -> job)")
        return []
    if not jobs.data:
        jobs.problems.add(top.value_mark("jobs"), "jobs: no jobs defined (add at least one)")
    drafts: list[_Draft] = []
    seen: dict[str, Mark] = {}
    for name in jobs.data:
        body = jobs.data[name]
        if not isinstance(body, MarkedDict):
            jobs.wrong_type(name, "a job mapping (steps, needs, ...)")
            continue
        for draft in _read_job(name, Section(body, f"jobs.{name}", top.problems), defaults,
                               stages, events):  # fmt: skip
            if draft.job.name in seen:
                top.problems.add(
                    draft.job.mark,
                    f'jobs.{name}: job name "{draft.job.name}" is defined twice '
                    f"(first at line {seen[draft.job.name].line}; rename one)",
                )
                continue
            seen[draft.job.name] = draft.job.mark
            drafts.append(draft)
    return drafts


def _read_matrix(job: Section) -> list[dict[str, str]]:
    """Every combination, keys in written order, the first key varying slowest."""
    matrix = job.section("matrix")
    if matrix is None:
        return [{}]
    axes: list[list[tuple[str, str]]] = []
    for key in matrix.data:
        values = matrix.text_list(key, allow_single=False)
        if values is None:
            continue
        if not values:
            matrix.report(key, "has no values (list at least one)")
            continue
        axes.append([(key, value) for value, _ in dict.fromkeys(values)])
    if not axes:
        if not matrix.data:
            job.report("matrix", "is empty (map a variable name to a list of values)")
        return [{}]
    total = 1
    for axis in axes:
        total *= len(axis)
    if total > MAX_MATRIX_JOBS:
        job.report("matrix", f"makes {total} jobs (at most {MAX_MATRIX_JOBS}; split it)")
        return [{}]
    return [dict(combo) for combo in itertools.product(*axes)]


def _read_needs(job: Section) -> list[tuple[str, bool, Mark]] | None:
    if not job.has("needs"):
        return None
    value = job.get("needs")
    if isinstance(value, str):
        return [(value, False, job.value_mark("needs"))]
    if not isinstance(value, MarkedList):
        job.wrong_type("needs", "a list of job names")
        return []
    needs: list[tuple[str, bool, Mark]] = []
    for index, item in enumerate(value):
        mark = value.item_mark(index)
        label = f"{job.path('needs')}[{index}]"
        if isinstance(item, str):
            needs.append((item, False, mark))
        elif isinstance(item, MarkedDict):
            need = Section(item, label, job.problems)
            need.check_keys(NEED_KEYS)
            name = need.text("job")
            if name is None and not need.has("job"):
                job.problems.add(mark, f"{label}: missing key job (the name of the job)")
            if name is not None:
                needs.append((name, bool(need.boolean("optional")), mark))
        else:
            job.problems.add(mark, f"{label}: expected a job name, got {type_name(item)}")
    return needs


def _read_job(
    name: str,
    job: Section,
    defaults: _Defaults,
    stages: tuple[str, ...],
    pipeline_events: frozenset[EventKind],
) -> list[_Draft]:
    job.check_keys(JOB_KEYS)
    stage = job.text("stage")
    if stage is not None and stages and stage not in stages:
        job.report("stage", f'stage "{stage}" is not in stages{did_you_mean(stage, stages)}')
    stage = stage or (stages[0] if stages else DEFAULT_STAGE)
    is_manual = bool(job.boolean("manual"))
    rule = read_rule(job, is_manual=is_manual)
    events = pipeline_events & (rule.events if rule and rule.events is not None else ALL_EVENTS)
    timeout_s = read_duration(job, "timeout")
    allow_failure = job.boolean("allow_failure")
    retry = read_retry(job, "retry")
    tags = read_tags(job, "tags")
    base = Job(
        name=name,
        stage=stage,
        steps=read_steps(job),
        mark=job.data.mark,
        env=job.text_mapping("env") or {},
        secrets=read_names(job, "secrets"),
        timeout_s=timeout_s if timeout_s is not None else defaults.timeout_s,
        retry=retry if retry is not None else defaults.retry,
        allow_failure=defaults.allow_failure if allow_failure is None else allow_failure,
        rules=None if rule is None else (rule,),
        when=When.MANUAL if is_manual else When.ON_SUCCESS,
        artifacts=read_artifacts(job),
        shell=_read_shell(job) or defaults.shell,
        workdir=job.text("workdir"),
        base_name=name,
        interruptible=bool(job.boolean("interruptible")),
        tags=tags if tags is not None else defaults.tags,
    )
    needs = _read_needs(job)
    drafts: list[_Draft] = []
    for combo in _read_matrix(job):
        full_name = name
        if combo:
            full_name = f"{name} [{', '.join(f'{key}={value}' for key, value in combo.items())}]"
        expanded = replace(base, name=full_name, matrix=combo, env={**base.env, **combo})
        drafts.append(_Draft(expanded, needs, job.path("needs"), events))
    return drafts


def _resolve_needs(drafts: list[_Draft], stages: tuple[str, ...], problems: Problems) -> None:
    """Needs as written -> Need tuples on each Job; unknown needs, cycles and needs on jobs
    that never run for one of the needing job's events are problems."""
    by_name = {draft.job.name: draft for draft in drafts}
    by_base: dict[str, list[_Draft]] = {}
    for draft in drafts:
        by_base.setdefault(draft.job.base_name, []).append(draft)
    known = sorted(set(by_name) | set(by_base))
    for draft in drafts:
        if draft.needs is None:
            continue
        resolved: list[Need] = []
        for need_name, optional, mark in draft.needs:
            targets = [by_name[need_name]] if need_name in by_name else by_base.get(need_name)
            if not targets:
                problems.add(
                    mark,
                    f'{draft.needs_label}: job "{draft.job.name}" needs unknown job '
                    f'"{need_name}"{did_you_mean(need_name, known)}',
                )
                continue
            for target in targets:
                if target.job.name not in {need.job for need in resolved}:
                    resolved.append(Need(target.job.name, optional=optional))
                    draft.edges.append((target.job.name, optional, mark))
        draft.job = replace(draft.job, needs=tuple(resolved))
    _check_cycles(drafts, problems)
    _check_excluded_needs(drafts, by_name, problems)
    _check_later_stages(drafts, by_name, stages, problems)


def _check_cycles(drafts: list[_Draft], problems: Problems) -> None:
    edges = {draft.job.name: [name for name, _, _ in draft.edges] for draft in drafts}
    marks = {draft.job.name: draft for draft in drafts}
    for cycle in find_cycles(edges):
        first = marks[cycle[0]]
        mark = next((m for name, _, m in first.edges if name == cycle[1]), first.job.mark)
        problems.add(
            mark,
            f"{first.needs_label}: needs form a cycle: {format_cycle(cycle)} "
            "(remove one of these needs)",
        )


def _check_excluded_needs(
    drafts: list[_Draft], by_name: dict[str, _Draft], problems: Problems
) -> None:
    for draft in drafts:
        for target_name, optional, mark in draft.edges:
            target = by_name[target_name]
            missing = draft.events - target.events
            if optional or not missing:
                continue
            runs_on = ", ".join(sorted(str(kind) for kind in missing))
            problems.add(
                mark,
                f'{draft.needs_label}: job "{draft.job.name}" runs on {runs_on} but the job it '
                f'needs, "{target_name}", does not (make the need optional: '
                f'{{job: "{target_name}", optional: true}}, or align their when.on)',
            )


def _check_later_stages(
    drafts: list[_Draft], by_name: dict[str, _Draft], stages: tuple[str, ...], problems: Problems
) -> None:
    """A need on a job of a later stage would deadlock with the stage order."""
    order = {stage: index for index, stage in enumerate(stages)}
    for draft in drafts:
        for target_name, _, mark in draft.edges:
            target = by_name[target_name].job
            if order.get(target.stage, 0) > order.get(draft.job.stage, 0):
                problems.add(
                    mark,
                    f'{draft.needs_label}: job "{draft.job.name}" (stage {draft.job.stage}) '
                    f'needs "{target_name}" of the later stage {target.stage} '
                    "(move one of them to another stage)",
                )
