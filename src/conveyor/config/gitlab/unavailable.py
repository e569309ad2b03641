"""Jobs that depend on an include conveyor could not read: found, reported and left out.

Owns: deciding, when Findings.unavailable lists includes (a `template`, `project`,
`component`, or a `remote` file offline), which jobs need what such an include would
define, so that the rest of the pipeline validates, plans and runs (GitLab would have the
include's templates, jobs and stages; conveyor does not). Before `extends` is resolved
(`leave_out_unresolvable`): a job or template that extends a name nobody defines (or a
left-out one), or whose `!reference` starts at such a name. After it
(`leave_out_incomplete`): a job with no `script`/`trigger` (it only overrides a job the
include defines), a job on a stage that no `stages:` names when the file has none (the
include's stages), a job that `needs` (or `dependencies`) a job that is not there, each
again until nothing changes. Each visible job left out is one warning at the job, naming
the include; under `--strict` these are errors (Findings.left_out).
Must not: run without unavailable includes (a missing name is then a plain error, reported
by extends.py, jobs.py and parallel.py), read files, or fetch anything.
"""

from __future__ import annotations

from collections.abc import Iterator

from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.keywords import DEFAULT_STAGES, TOP_LEVEL_KEYS
from conveyor.config.yamlload import MarkedDict, MarkedList, Reference

__all__ = ["leave_out_incomplete", "leave_out_unresolvable"]

SOURCE = "\0source\0"  # in a reason: where the unavailable include is named
_DEFAULT_STAGES = frozenset({*DEFAULT_STAGES, ".pre", ".post"})


def _source(findings: Findings) -> str:
    mark, what = findings.unavailable[0]
    others = len(findings.unavailable) - 1
    more = f" (or one of {others} other unreadable include{'s' * (others > 1)})" if others else ""
    return f"{what} ({mark.file}:{mark.line}){more}"


def _entries(config: MarkedDict) -> Iterator[tuple[str, MarkedDict]]:
    for name, body in config.items():
        if name not in TOP_LEVEL_KEYS and isinstance(body, MarkedDict):
            yield name, body


def _parents(body: MarkedDict) -> list[str]:
    raw = body.get("extends")
    if isinstance(raw, str):
        return [raw]
    return [item for item in raw if isinstance(item, str)] if isinstance(raw, list) else []


def _references(value: object) -> Iterator[Reference]:
    if isinstance(value, Reference):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _without(config: MarkedDict, names: dict[str, str], findings: Findings) -> MarkedDict:
    """`config` without the entries in `names`; a warning for each visible job."""
    kept = MarkedDict(config.mark)
    for key, value in config.items():
        if key in names:
            if key.startswith("."):
                findings.left_out_jobs.add(key)
            else:
                reason = names[key].replace(SOURCE, _source(findings))
                findings.left_out(config.key_mark(key), f'job "{key}" is left out: {reason}', key)
            continue
        kept[key] = value
        kept.key_marks[key] = config.key_mark(key)
        kept.value_marks[key] = config.value_mark(key)
    return kept


def leave_out_unresolvable(config: MarkedDict, findings: Findings) -> MarkedDict:
    """`config` without the jobs and templates whose `extends` or `!reference` name what
    is not defined (or is itself left out)."""
    if not findings.unavailable:
        return config
    defined = set(config)  # a !reference may point at any key, `.tags: [a]` included
    left: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, body in _entries(config):
            if name in left:
                continue
            why = _unresolvable(body, defined, left)
            if why is not None:
                left[name] = why
                changed = True
    return _without(config, left, findings) if left else config


def _unresolvable(body: MarkedDict, defined: set[str], left: dict[str, str]) -> str | None:
    for parent in _parents(body):
        if parent in left:
            return f'it extends "{parent}", which is left out'
        if parent not in defined:
            return f'it extends "{parent}", which {SOURCE} may define'
    for ref in _references(body):
        if ref.path and (ref.path[0] not in defined or ref.path[0] in left):
            path = ", ".join(ref.path)
            which = "is left out" if ref.path[0] in left else f"{SOURCE} may define"
            return f"its !reference [{path}] points at {ref.path[0]}, which {which}"
    return None


def _needed(body: MarkedDict) -> Iterator[str]:
    """The jobs `needs` (not optional ones, not other pipelines') and `dependencies` name."""
    needs = body.get("needs")
    for item in needs if isinstance(needs, MarkedList) else ():
        if isinstance(item, str):
            yield item
        elif (
            isinstance(item, dict)
            and isinstance(item.get("job"), str)
            and item.get("optional") is not True
            and "pipeline" not in item
        ):
            yield item["job"]
    dependencies = body.get("dependencies")
    for item in dependencies if isinstance(dependencies, list) else ():
        if isinstance(item, str):
            yield item


def _incomplete(
    name: str, body: MarkedDict, *, has_stages: bool, visible: set[str], left: dict[str, str]
) -> str | None:
    if name.startswith("."):
        return None
    if not any(key in body for key in ("script", "trigger", "run")):
        return f"it has no script: it only changes a job that {SOURCE} may define"
    stage = body.get("stage", "test")
    if not has_stages and isinstance(stage, str) and stage not in _DEFAULT_STAGES:
        return f'its stage "{stage}" is not in the default stages; {SOURCE} may list it'
    for need in _needed(body):
        if need in left:
            return f'it needs "{need}", which is left out'
        if need not in visible:
            return f'it needs "{need}", which {SOURCE} may define'
    return None


def leave_out_incomplete(config: MarkedDict, findings: Findings) -> MarkedDict:
    """`config` (extends and references resolved) without the visible jobs that cannot
    run without what an unavailable include defines, and the jobs needing them."""
    if not findings.unavailable:
        return config
    has_stages = "stages" in config or "types" in config
    visible = {name for name, _ in _entries(config) if not name.startswith(".")}
    left: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, body in _entries(config):
            if name in left:
                continue
            gone = {**dict.fromkeys(findings.left_out_jobs, ""), **left}
            why = _incomplete(name, body, has_stages=has_stages, visible=visible, left=gone)
            if why is not None:
                left[name] = why
                changed = True
    return _without(config, left, findings) if left else config
