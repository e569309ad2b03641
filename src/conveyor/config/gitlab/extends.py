"""GitLab's deep merge, `extends:` and `!reference` resolution over marked YAML data.

Owns: the merge rule shared by `include` and `extends` (mappings merge key by key, anything
else, lists included, is replaced by the later value), resolving `extends` (several levels,
several parents, cycles and unknown names reported) and `!reference [name, key, ...]`.
Must not: mutate its input (anchors share objects), or know what a job keyword means.
Marks survive every merge, so an error names the file and line a value came from.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, MarkedList, Reference, mark_of, type_name
from conveyor.model import Mark
from conveyor.suggest import did_you_mean

__all__ = ["deep_merge", "resolve_extends", "resolve_references"]

MAX_EXTENDS_DEPTH = 11  # GitLab's limit on inheritance levels
MAX_REFERENCE_DEPTH = 10  # GitLab's limit on nested !reference


def deep_merge(base: object, override: object) -> object:
    """GitLab's merge: mappings key by key (recursively), any other value replaced."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = MarkedDict(override.mark if isinstance(override, MarkedDict) else Mark("", 0, 0))
    for source in (base, override):
        for key, value in source.items():
            if source is override and key in merged:
                merged[key] = deep_merge(merged[key], value)
            else:
                merged[key] = value
            if isinstance(source, MarkedDict):
                merged.key_marks[key] = source.key_mark(key)
                merged.value_marks[key] = source.value_mark(key)
    return merged


def _parents(name: str, body: MarkedDict, findings: Findings) -> list[tuple[str, Mark]]:
    raw = body.get("extends")
    mark = body.value_mark("extends")
    if isinstance(raw, str):
        return [(raw, mark)]
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        marks = raw.item_marks if isinstance(raw, MarkedList) else []
        return [(item, marks[i] if i < len(marks) else mark) for i, item in enumerate(raw)]
    findings.error(
        mark,
        f'job "{name}": extends must be a job name or a list of names, got {type_name(raw)} '
        "(write extends: .template)",
    )
    return []


def resolve_extends(config: MarkedDict, findings: Findings) -> MarkedDict:
    """A copy of `config` where every mapping entry with `extends` has its parents merged in
    (parents in order, later parents win, the entry itself wins last)."""
    resolved: dict[str, MarkedDict] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> MarkedDict:
        if name in resolved:
            return resolved[name]
        body = config[name]
        if not isinstance(body, MarkedDict):  # callers only pass mapping entries
            return MarkedDict(config.key_mark(name))
        if "extends" not in body:
            resolved[name] = body
            return body
        merged: object = MarkedDict(body.mark)
        for parent, mark in _parents(name, body, findings):
            path = (*chain, name)
            if parent in path:
                cycle = " -> ".join((*path[path.index(parent) :], parent))
                findings.error(mark, f"extends cycle: {cycle} (remove one of these extends)")
                continue
            if len(chain) + 1 >= MAX_EXTENDS_DEPTH:
                findings.error(
                    mark,
                    f'job "{name}": extends nests deeper than {MAX_EXTENDS_DEPTH} levels '
                    "(flatten the templates)",
                )
                continue
            target = config.get(parent)
            if not isinstance(target, MarkedDict):
                hint = did_you_mean(parent, [k for k, v in config.items() if isinstance(v, dict)])
                what = "is not a job or template" if parent in config else "does not exist"
                findings.error(mark, f'job "{name}" extends "{parent}", which {what}{hint}')
                findings.unresolved.add(name)
                continue
            merged = deep_merge(merged, resolve(parent, (*chain, name)))
        final = deep_merge(merged, body)
        result = final if isinstance(final, MarkedDict) else body
        result.pop("extends", None)
        resolved[name] = result
        return result

    result = MarkedDict(config.mark)
    for key, value in config.items():
        result[key] = resolve(key, ()) if isinstance(value, MarkedDict) else value
        result.key_marks[key] = config.key_mark(key)
        result.value_marks[key] = config.value_mark(key)
    return result


_MISSING = object()  # what a !reference that points at nothing resolves to (reported)


def _lookup(config: Mapping[str, object], ref: Reference, findings: Findings) -> object:
    node: object = config
    for depth, part in enumerate(ref.path):
        if not isinstance(node, dict) or part not in node:
            where = " > ".join(ref.path[: depth + 1])
            choices = list(node) if isinstance(node, dict) else []
            findings.error(
                ref.mark,
                f"!reference [{', '.join(ref.path)}]: {where} does not exist"
                f"{did_you_mean(part, choices)}",
            )
            return _MISSING
        node = node[part]
    return node


def resolve_references(config: MarkedDict, findings: Findings) -> MarkedDict:
    """A copy of `config` with every `!reference` replaced by the value it points at."""

    def walk(value: object, depth: int) -> object:
        if isinstance(value, Reference):
            if depth >= MAX_REFERENCE_DEPTH:
                findings.error(
                    value.mark,
                    f"!reference nests deeper than {MAX_REFERENCE_DEPTH} levels "
                    "(or refers to itself)",
                )
                return _MISSING
            target = _lookup(config, value, findings)
            return target if target is _MISSING else walk(target, depth + 1)
        if isinstance(value, MarkedDict):
            copy = MarkedDict(value.mark)
            for key, item in value.items():
                found = walk(item, depth)
                copy[key] = None if found is _MISSING else found
                copy.key_marks[key] = value.key_mark(key)
                copy.value_marks[key] = mark_of(item, value.value_mark(key))
            return copy
        if isinstance(value, MarkedList):
            items = MarkedList(value.mark)
            for index, item in enumerate(value):
                found = walk(item, depth)
                if found is _MISSING:  # reported once; the list's other items still count
                    continue
                items.append(found)
                items.item_marks.append(value.item_mark(index))
            return items
        return value

    resolved = walk(config, 0)  # a missing reference at the top level is no key at all
    return resolved if isinstance(resolved, MarkedDict) else config
