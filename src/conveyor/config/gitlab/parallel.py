"""`parallel` expansion and the cross-job checks of `needs` and `dependencies`.

Owns: GitLab's job names for `parallel: N` (`test 1/3`) and `parallel: matrix`
(`deploy: [aws, monitoring]`, values in key order joined by ", "), the matrix variables and
CI_NODE_INDEX/CI_NODE_TOTAL of each copy, and rewriting needs/dependencies that name a
parallel job to every copy (or to the copies a `needs:parallel:matrix` selects), in a job's
`needs` and in its `rules:needs` alike. It reports unknown names (with did-you-mean) and
needs on a job of a later stage.
Must not: read files or plan (whether a needed job runs is the planner's business).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.jobs import JobDraft
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Job, Mark, Need, Rule
from conveyor.suggest import did_you_mean

__all__ = ["MAX_PARALLEL", "expand_parallel", "resolve_job_links"]

MAX_PARALLEL = 200  # GitLab's limit on copies of one job


def _scalar(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def _matrix_rows(raw: object, mark: Mark, where: str, findings: Findings) -> list[dict[str, str]]:
    if not isinstance(raw, MarkedList) or not raw:
        findings.error(mark, f"{where}: parallel:matrix must be a list of mappings")
        return []
    rows: list[dict[str, str]] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, MarkedDict) or not entry:
            findings.error(raw.item_mark(index), f"{where}: each matrix entry must be a mapping")
            continue
        axes: list[list[tuple[str, str]]] = []
        for key, value in entry.items():
            values = value if isinstance(value, list) else [value]
            texts = [_scalar(v) for v in values]
            if not values or any(t is None for t in texts):
                findings.error(
                    entry.value_mark(key),
                    f"{where}: matrix variable {key} must be a string or a list of strings",
                )
                break
            axes.append([(key, t) for t in texts if t is not None])
        else:
            rows.extend(dict(combo) for combo in itertools.product(*axes))
    return rows


def _copies(draft: JobDraft, findings: Findings) -> list[Job]:
    job = draft.job
    raw = draft.parallel
    where = f'job "{job.name}"'
    if raw is None:
        return [job]
    if isinstance(raw, int) and not isinstance(raw, bool):
        if not 1 <= raw <= MAX_PARALLEL:
            findings.error(draft.parallel_mark, f"{where}: parallel must be 1 to {MAX_PARALLEL}")
            return [job]
        return [
            replace(job, name=f"{job.name} {i}/{raw}", node_index=i, node_total=raw)
            for i in range(1, raw + 1)
        ]
    if not isinstance(raw, MarkedDict) or set(raw) != {"matrix"}:
        findings.error(
            draft.parallel_mark,
            f"{where}: parallel must be a number or {{matrix: [...]}}, got {type_name(raw)}",
        )
        return [job]
    rows = _matrix_rows(raw["matrix"], raw.value_mark("matrix"), where, findings)
    if len(rows) > MAX_PARALLEL:
        findings.error(draft.parallel_mark, f"{where}: matrix makes more than {MAX_PARALLEL} jobs")
        return [job]
    return [
        replace(
            job,
            name=f"{job.name}: [{', '.join(row.values())}]",
            env={**job.env, **row},
            matrix=row,
            node_index=i,
            node_total=len(rows),
        )
        for i, row in enumerate(rows, start=1)
    ]


def expand_parallel(drafts: list[JobDraft], findings: Findings) -> list[Job]:
    """Every draft as its concrete jobs, in file order; duplicate names reported."""
    jobs: list[Job] = []
    seen: set[str] = set()
    for draft in drafts:
        for job in _copies(draft, findings):
            if job.name in seen:
                findings.error(job.mark, f'job name "{job.name}" is used twice (rename one)')
                continue
            seen.add(job.name)
            jobs.append(job)
    return jobs


@dataclass(frozen=True, slots=True)
class _Index:
    """The jobs by concrete name and by name as written, and each stage's rank."""

    by_name: Mapping[str, Job]
    by_base: Mapping[str, list[Job]]
    rank: Mapping[str, int]

    def targets(self, name: str) -> list[Job]:
        if name in self.by_name:
            return [self.by_name[name]]
        return list(self.by_base.get(name, ()))


def _resolved_needs(
    job: Job,
    needs: tuple[Need, ...],
    selections: Mapping[int, object],
    mark: Mark,
    index: _Index,
    findings: Findings,
) -> tuple[Need, ...]:
    """`needs` with names rewritten to concrete jobs; unknown names and needs on a later
    stage reported at `mark`."""
    where = f'job "{job.name}"'
    resolved: list[Need] = []
    for position, need in enumerate(needs):
        targets = index.targets(need.job)
        wanted = selections.get(position)
        if targets and isinstance(wanted, list):
            targets = [t for t in targets if any(_row_matches(t, row, job) for row in wanted)]
            if not targets:
                findings.error(
                    mark,
                    f'{where} needs "{need.job}" with a parallel:matrix that matches none of '
                    "its jobs (check the matrix values)",
                )
                continue
        if not targets and need.optional:
            continue  # GitLab: an optional need of a job not in the pipeline is dropped
        if not targets:
            others = [name for name in index.by_base if name not in (job.base_name, job.name)]
            hint = did_you_mean(need.job, others)
            findings.error(mark, f'{where} needs "{need.job}", which is not a job{hint}')
            continue
        for target in targets:
            if index.rank.get(target.stage, 0) > index.rank.get(job.stage, 0):
                findings.error(
                    mark,
                    f'{where} (stage {job.stage}) needs "{target.name}" of the later '
                    f"stage {target.stage} (move one of them)",
                )
            resolved.append(replace(need, job=target.name))
    return tuple(resolved)


def _resolved_rules(job: Job, index: _Index, findings: Findings) -> tuple[Rule, ...] | None:
    """The job's rules with their `rules:needs` resolved like the job's own needs."""
    if job.rules is None:
        return None
    return tuple(
        rule
        if rule.needs is None
        else replace(
            rule,
            needs=_resolved_needs(job, rule.needs, {}, rule.mark or job.mark, index, findings),
        )
        for rule in job.rules
    )


def resolve_job_links(
    jobs: list[Job],
    stages: tuple[str, ...],
    needs_matrix: Mapping[tuple[str, int], object],
    findings: Findings,
) -> list[Job]:
    """Needs (the job's and its rules'), and dependencies rewritten to concrete job names
    and checked."""
    by_base: dict[str, list[Job]] = {}
    for job in jobs:
        by_base.setdefault(job.base_name or job.name, []).append(job)
    index = _Index(
        by_name={job.name: job for job in jobs},
        by_base=by_base,
        rank={stage: i for i, stage in enumerate(stages)},
    )
    resolved: list[Job] = []
    for job in jobs:
        needs = None
        if job.needs is not None:
            selections = {
                position: wanted
                for (base, position), wanted in needs_matrix.items()
                if base == job.base_name
            }
            needs = _resolved_needs(job, job.needs, selections, job.mark, index, findings)
        deps: list[str] | None = None if job.dependencies is None else []
        for dep in job.dependencies or ():
            targets = index.targets(dep)
            if not targets:
                others = [name for name in by_base if name not in (job.base_name, job.name)]
                findings.error(
                    job.mark,
                    f'job "{job.name}": dependency "{dep}" is not a job{did_you_mean(dep, others)}',
                )
            if deps is not None:
                deps.extend(target.name for target in targets)
        resolved.append(
            replace(
                job,
                needs=needs,
                dependencies=None if deps is None else tuple(deps),
                rules=_resolved_rules(job, index, findings),
            )
        )
    return resolved


_MATRIX_EXPRESSION = re.compile(r"\$\[\[\s*matrix\.([A-Za-z_][A-Za-z0-9_]*)\s*\]\]")


def _row_matches(job: Job, row: object, needing: Job) -> bool:
    """Whether matrix job `job` is one that a `needs:parallel:matrix` row of `needing`
    selects. A value may be a list (any of them) and may hold `$[[ matrix.NAME ]]`, the
    needing job's own value of NAME (GitLab's matrix expressions)."""
    if not isinstance(row, dict):
        return False

    def own_value(match: re.Match[str]) -> str:
        return needing.matrix.get(match.group(1), "")

    for key, value in row.items():
        values = value if isinstance(value, list) else [value]
        texts = [_scalar(v) for v in values]
        wanted = {_MATRIX_EXPRESSION.sub(own_value, t) for t in texts if t is not None}
        if job.matrix.get(str(key)) not in wanted:
            return False
    return True
