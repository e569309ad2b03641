"""GitLab `needs` lists as written → model.Need, for a job's `needs:` and a rule's
`rules:needs` (which replaces the job's needs when the rule matches, GitLab 16+).

Owns: the accepted forms — a job name, or `{job, optional, artifacts}` (plus, for a job's
own needs, `parallel: matrix` selections and cross-project/pipeline needs, the latter
warned about and dropped) — and their per-item validation with did-you-mean.
Must not: resolve names across jobs (parallel.py checks that every named job exists and is
not in a later stage) or read files.
"""

from __future__ import annotations

from collections.abc import Collection

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Mark, Need
from conveyor.suggest import did_you_mean

__all__ = ["RULE_NEED_KEYS", "parse_needs"]

# rules:needs accepts job names and `{job, optional, artifacts}` (GitLab's documentation).
RULE_NEED_KEYS = frozenset({"job", "optional", "artifacts"})


def _flag(item: MarkedDict, key: str, where: str, findings: Findings) -> bool | None:
    value = item.get(key)
    if value is None or isinstance(value, bool):
        return value
    findings.error(
        item.value_mark(key), f"{where}: {key} must be true or false, got {type_name(value)}"
    )
    return None


def parse_needs(
    raw: object, mark: Mark, where: str, keys: Collection[str], findings: Findings
) -> tuple[Need, ...] | None:
    """The needs of `raw` (None when absent); `keys` are the mapping keys allowed."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        findings.error(mark, f"{where}: needs must be a list, got {type_name(raw)}")
        return None
    needs: list[Need] = []
    marks = raw.item_marks if isinstance(raw, MarkedList) else []
    for index, item in enumerate(raw):
        item_mark = marks[index] if index < len(marks) else mark
        if isinstance(item, str):
            needs.append(Need(item))
            continue
        if not isinstance(item, MarkedDict) or not isinstance(item.get("job"), str):
            findings.error(item_mark, f"{where}: each need is a job name or {{job: name, ...}}")
            continue
        for key in item:
            if key not in keys:
                findings.error(
                    item.key_mark(key), f"{where}: unknown needs key {key}{did_you_mean(key, keys)}"
                )
        if "pipeline" in item or "project" in item:
            findings.warn_once(
                "needs:project",
                item_mark,
                "needs from another project or pipeline need a GitLab server (ignored)",
            )
            continue
        needs.append(
            Need(
                item["job"],
                optional=_flag(item, "optional", where, findings) or False,
                artifacts=_flag(item, "artifacts", where, findings) is not False,
            )
        )
    return tuple(needs)
