"""`parallel` expansion and the cross-job checks of `needs` and `dependencies`.

Owns: GitLab's job names for `parallel: N` (`test 1/3`) and `parallel: matrix`
(`deploy: [aws, monitoring]`, values in key order joined by ", "), the matrix variables and
CI_NODE_INDEX/CI_NODE_TOTAL of each copy, and rewriting needs/dependencies that name a
parallel job to every copy (or to the copies a `needs:parallel:matrix` selects). It reports
unknown names (with did-you-mean) and needs on a job of a later stage.
Must not: read files or plan (whether a needed job runs is the planner's business).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace

from conveyor.config.gitlab.findings import Findings, suggest
from conveyor.config.gitlab.jobs import JobDraft
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Job, Mark, Need

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


def _targets(name: str, by_base: Mapping[str, list[Job]], by_name: Mapping[str, Job]) -> list[Job]:
    if name in by_name:
        return [by_name[name]]
    return list(by_base.get(name, ()))


def resolve_job_links(
    jobs: list[Job],
    stages: tuple[str, ...],
    needs_matrix: Mapping[tuple[str, int], object],
    findings: Findings,
) -> list[Job]:
    """Needs and dependencies rewritten to concrete job names and checked."""
    by_name = {job.name: job for job in jobs}
    by_base: dict[str, list[Job]] = {}
    for job in jobs:
        by_base.setdefault(job.base_name or job.name, []).append(job)
    rank = {stage: i for i, stage in enumerate(stages)}
    resolved: list[Job] = []
    for job in jobs:
        where = f'job "{job.name}"'
        needs: list[Need] | None = None if job.needs is None else []
        for index, need in enumerate(job.needs or ()):
            targets = _targets(need.job, by_base, by_name)
            wanted = needs_matrix.get((job.base_name, index))
            if isinstance(wanted, list):
                targets = [t for t in targets if any(_row_matches(t, row) for row in wanted)]
            if not targets:
                hint = suggest(need.job, by_base)
                findings.error(job.mark, f'{where} needs "{need.job}", which is not a job{hint}')
                continue
            for target in targets:
                if rank.get(target.stage, 0) > rank.get(job.stage, 0):
                    findings.error(
                        job.mark,
                        f'{where} (stage {job.stage}) needs "{target.name}" of the later '
                        f"stage {target.stage} (move one of them)",
                    )
                if needs is not None:
                    needs.append(replace(need, job=target.name))
        deps: list[str] | None = None if job.dependencies is None else []
        for dep in job.dependencies or ():
            targets = _targets(dep, by_base, by_name)
            if not targets:
                findings.error(
                    job.mark, f'{where}: dependency "{dep}" is not a job{suggest(dep, by_base)}'
                )
            if deps is not None:
                deps.extend(target.name for target in targets)
        resolved.append(
            replace(
                job,
                needs=None if needs is None else tuple(needs),
                dependencies=None if deps is None else tuple(deps),
            )
        )
    return resolved


def _row_matches(job: Job, row: object) -> bool:
    if not isinstance(row, dict):
        return False
    return all(job.matrix.get(str(k)) == _scalar(v) for k, v in row.items())
