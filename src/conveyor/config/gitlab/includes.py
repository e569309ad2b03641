"""`include:` — merging local files into the main `.gitlab-ci.yml`.

Owns: reading the `include` entries (a string, a list, `{local: ...}`), matching local glob
patterns against the repository's file list, merging included files (nested includes
first, the including file wins, GitLab's deep merge), and reporting cycles with the chain.
Non-local includes (remote, template, project, component) are accepted and reported once as
a warning: a local run has no GitLab server to fetch them from.
Must not: touch the file system. Files come from a `Reader` given by the I/O edge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from conveyor.config.gitlab.extends import deep_merge
from conveyor.config.gitlab.findings import Findings, suggest
from conveyor.config.gitlab.keywords import INCLUDE_KINDS
from conveyor.config.yamlload import MarkedDict, MarkedList, load_yaml, type_name
from conveyor.errors import ConfigError
from conveyor.model import Mark

__all__ = ["Reader", "expand_includes", "match_include"]

# pattern (repository-relative, no leading "/") -> [(file label, text)], [] when none match.
Reader = Callable[[str], list[tuple[str, str]]]

MAX_INCLUDES = 150  # GitLab's default limit on included files per pipeline


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def match_include(pattern: str, paths: Iterable[str]) -> list[str]:
    """Repository paths matching a local include pattern, sorted. GitLab's rules: `*`
    stays within one directory, `**` spans directories; no wildcard means an exact path."""
    pattern = pattern.lstrip("/")
    if not any(ch in pattern for ch in "*?"):
        return [pattern] if pattern in set(paths) else []
    regex = _glob_regex(pattern)
    return sorted(path for path in paths if regex.match(path))


def _entries(raw: object, mark: Mark, findings: Findings) -> list[tuple[str, Mark]]:
    """The local include patterns of one `include:` value, with their marks."""
    items: list[tuple[object, Mark]]
    if isinstance(raw, MarkedList):
        items = [(item, raw.item_mark(i)) for i, item in enumerate(raw)]
    else:
        items = [(raw, mark)]
    patterns: list[tuple[str, Mark]] = []
    for item, item_mark in items:
        if isinstance(item, str):
            if item.startswith(("http://", "https://")):
                findings.warn_once(
                    "include:remote",
                    item_mark,
                    "include: remote files are not fetched by a local run (ignored)",
                )
            else:
                patterns.append((item, item_mark))
        elif isinstance(item, MarkedDict):
            patterns.extend(_entry_from_mapping(item, findings))
        else:
            findings.error(
                item_mark,
                f"include: expected a file path or a mapping such as {{local: ci/build.yml}}, "
                f"got {type_name(item)}",
            )
    return patterns


def _entry_from_mapping(item: MarkedDict, findings: Findings) -> list[tuple[str, Mark]]:
    kinds = [key for key in item if key in INCLUDE_KINDS]
    if len(kinds) != 1:
        unknown = [key for key in item if key not in INCLUDE_KINDS | {"rules", "inputs"}]
        hint = suggest(unknown[0], INCLUDE_KINDS) if unknown else ""
        findings.error(
            item.mark,
            "include: each entry needs exactly one of local, remote, template, project, "
            f"component{hint}",
        )
        return []
    kind = kinds[0]
    if "rules" in item:
        findings.warn_once(
            "include:rules",
            item.key_mark("rules"),
            "include:rules is not evaluated by conveyor (the file is always included)",
        )
    if kind != "local":
        findings.warn_once(
            f"include:{kind}",
            item.key_mark(kind),
            f"include:{kind} needs a GitLab server; a local run ignores it",
        )
        return []
    value = item["local"]
    if not isinstance(value, str):
        findings.error(
            item.value_mark("local"),
            f"include:local must be a file path, got {type_name(value)}",
        )
        return []
    return [(value, item.value_mark("local"))]


def expand_includes(
    text: str, file: str, read: Reader | None, findings: Findings
) -> MarkedDict | None:
    """The main document with every local include merged in, or None when it is not a
    mapping (reported). YAML errors of included files are reported with their file."""
    count = [0]
    return _expand(text, file, read, findings, (file,), count)


def _expand(
    text: str,
    file: str,
    read: Reader | None,
    findings: Findings,
    chain: tuple[str, ...],
    count: list[int],
) -> MarkedDict | None:
    try:
        doc = load_yaml(text, file)
    except ConfigError as exc:
        findings.problems.extend(exc.problems)
        return None
    if doc is None:
        doc = MarkedDict(Mark(file, 1, 1))
    if not isinstance(doc, MarkedDict):
        findings.error(
            Mark(file, 1, 1),
            f"the file must be a mapping of keywords and jobs, got {type_name(doc)}",
        )
        return None
    if "include" not in doc:
        return doc
    merged: object = MarkedDict(doc.mark)
    for pattern, mark in _entries(doc["include"], doc.value_mark("include"), findings):
        files = read(pattern.lstrip("/")) if read is not None else []
        if not files:
            findings.error(mark, f'include "{pattern}" matches no file (check the path)')
            continue
        for label, sub_text in files:
            if label in chain:
                cycle = " -> ".join((*chain, label))
                findings.error(mark, f"include cycle: {cycle} (remove one of these includes)")
                continue
            count[0] += 1
            if count[0] > MAX_INCLUDES:
                findings.error(mark, f"more than {MAX_INCLUDES} included files (include fewer)")
                return None
            sub = _expand(sub_text, label, read, findings, (*chain, label), count)
            if sub is not None:
                merged = deep_merge(merged, sub)
    body = MarkedDict(doc.mark)
    for key, value in doc.items():
        if key != "include":
            body[key] = value
            body.key_marks[key] = doc.key_mark(key)
            body.value_marks[key] = doc.value_mark(key)
    result = deep_merge(merged, body)
    return result if isinstance(result, MarkedDict) else body
