"""`include:` — merging local and remote files into the main `.gitlab-ci.yml`.

Owns: walking the includes (include_entries.py parses each entry; `template`, `project`
and `component`, and `remote` without a fetcher or when its host cannot be reached, are
recorded as unavailable in the Findings, and unavailable.py leaves out what depends on
them): deciding
`include:rules` (include_rules.py; without conditions every file is included, with one
warning), matching local glob patterns against the repository's file list, taking remote
files from a `RemoteFetcher` (checked against `integrity`, decoded as UTF-8, parsed by the
same marked loader with the URL, without its query, as the file name), merging included files
(nested includes first, the including file wins, GitLab's deep merge), refusing
`include:local` inside a remote file (as GitLab does: a remote file has no project to
resolve it against), and reporting cycles with the chain.
Must not: touch the file system or the network. Files come from a `Reader` and a
`RemoteFetcher` given by the I/O edge.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from conveyor.config.expr import expand
from conveyor.config.gitlab.document import Reader, load_document, with_inputs
from conveyor.config.gitlab.extends import deep_merge
from conveyor.config.gitlab.findings import Findings, redact_quoted
from conveyor.config.gitlab.include_entries import IncludeEntry, parse_include, shown_url
from conveyor.config.gitlab.include_gitlab import (
    ProjectOrigin,
    gitlab_documents,
    project_local,
)
from conveyor.config.gitlab.include_rules import IncludeConditions, include_exclusion
from conveyor.config.remote import GitLabFiles, RemoteFetcher
from conveyor.config.yamlload import MarkedDict, load_yaml, type_name
from conveyor.errors import ConfigError, IncludeFetchError, IncludeUnreachable
from conveyor.model import Mark

__all__ = ["IncludeSources", "expand_includes", "match_include"]

MAX_INCLUDES = 150  # GitLab's default limit on included files per pipeline
_REMOTE = "remote"
# Where an included file came from: the repository (None), a URL, or a GitLab project.
_Origin = ProjectOrigin | str | None


@dataclass(frozen=True, slots=True)
class IncludeSources:
    """Where included files come from, and what `include:rules` are decided with
    (`conditions` None: no event is known, so every conditional include is loaded)."""

    read: Reader | None = None
    fetch: RemoteFetcher | None = None
    conditions: IncludeConditions | None = None
    gitlab: GitLabFiles | None = None  # project, template and component includes


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


def expand_includes(
    doc: MarkedDict, file: str, sources: IncludeSources, findings: Findings
) -> MarkedDict | None:
    """The main document `doc` (read from `file`) with every included file merged in, or
    None when too many files are included (reported). YAML errors of included files are
    reported with their file."""
    return _Walk(sources, findings).expand(doc, (file,), origin=None)


class _Walk:
    """One expansion: the included-file count and the remote bodies fetched so far."""

    def __init__(self, sources: IncludeSources, findings: Findings) -> None:
        self.sources = sources
        self.findings = findings
        self.count = 0
        self.fetched: dict[str, bytes | IncludeFetchError] = {}

    def expand(
        self, doc: MarkedDict, chain: tuple[str, ...], *, origin: _Origin
    ) -> MarkedDict | None:
        if "include" not in doc:
            return doc
        merged: object = MarkedDict(doc.mark)
        for entry in parse_include(doc["include"], doc.value_mark("include"), self.findings):
            if not self._is_included(entry):
                continue
            for label, sub, sub_origin in self._documents(entry, origin):
                if label in chain:
                    cycle = " -> ".join((*chain, label))
                    self.findings.include_error(
                        entry.mark, f"include cycle: {cycle} (remove one of these includes)"
                    )
                    continue
                self.count += 1
                if self.count > MAX_INCLUDES:
                    self.findings.include_error(
                        entry.mark, f"more than {MAX_INCLUDES} included files (include fewer)"
                    )
                    return None
                expanded = self.expand(sub, (*chain, label), origin=sub_origin)
                if expanded is not None:
                    merged = deep_merge(merged, expanded)
        body = MarkedDict(doc.mark)
        for key, value in doc.items():
            if key != "include":
                body[key] = value
                body.key_marks[key] = doc.key_mark(key)
                body.value_marks[key] = doc.value_mark(key)
        result = deep_merge(merged, body)
        return result if isinstance(result, MarkedDict) else body

    def _is_included(self, entry: IncludeEntry) -> bool:
        if entry.rules is None:
            return True
        conditions = self.sources.conditions
        if conditions is None:
            self.findings.warn_once(
                "include:rules",
                entry.mark,
                "include:rules are not evaluated without an event: every conditional include "
                "is loaded (conveyor plan and run decide them for their event)",
            )
            return True
        try:
            return include_exclusion(entry.rules, conditions) is None
        except ConfigError as exc:
            self.findings.problems.extend(exc.problems)
            return False

    def _documents(
        self, entry: IncludeEntry, origin: _Origin
    ) -> list[tuple[str, MarkedDict, _Origin]]:
        """(label, document, origin) for each file `entry` names, [] when reported."""
        if entry.kind == "remote":
            found = self._remote(entry)
            return [] if found is None else [(*found, _REMOTE)]
        gitlab = self.sources.gitlab
        if entry.kind != "local" or isinstance(origin, ProjectOrigin):
            if gitlab is None:
                self.findings.include_unavailable(
                    entry.mark,
                    entry.described,
                    "no GitLab instance is configured: set CONVEYOR_GITLAB_URL",
                )
                return []
            if entry.kind == "local" and isinstance(origin, ProjectOrigin):
                return list(project_local(entry, origin, gitlab, self.findings, self._expand))
            return list(gitlab_documents(entry, gitlab, self.findings, self._expand))
        if origin == _REMOTE:
            self.findings.include_error(
                entry.mark,
                f'include "{entry.location}": include:local in a remote file has no project '
                "to be read from (GitLab refuses it too); include it with its full URL",
            )
            return []
        read = self.sources.read
        files = read(entry.location.lstrip("/")) if read is not None else []
        if not files:
            self.findings.include_error(
                entry.mark, f'include "{entry.location}" matches no file (check the path)'
            )
        documents: list[tuple[str, MarkedDict, _Origin]] = []
        for label, text in files:
            doc = load_document(
                text,
                label,
                self.findings,
                given_inputs=entry.inputs,
                include_mark=entry.mark,
                expand=self._expand,
            )
            if doc is not None:
                documents.append((label, doc, None))
        return documents

    def _remote(self, entry: IncludeEntry) -> tuple[str, MarkedDict] | None:
        label = shown_url(entry.location)
        where = f"include:remote {label}"
        fetch = self.sources.fetch
        if fetch is None:
            self.findings.include_unavailable(entry.mark, where, "remote files are not fetched")
            return None
        if entry.location not in self.fetched:
            try:
                self.fetched[entry.location] = fetch.fetch(entry.location)
            except IncludeFetchError as exc:
                self.fetched[entry.location] = exc
        body = self.fetched[entry.location]
        if isinstance(body, IncludeUnreachable):  # offline: as an include never fetched
            self.findings.include_unavailable(entry.mark, where, str(body))
            return None
        reason = str(body) if isinstance(body, IncludeFetchError) else _body_problem(body, entry)
        if reason is not None or isinstance(body, IncludeFetchError):
            self.findings.include_error(entry.mark, f"{where}: {reason}")
            return None
        text = body.decode("utf-8")
        self.findings.remote_files.add(label)  # what is found in it never quotes its text
        header = None
        if text.startswith("spec") or "\nspec" in text:
            from conveyor.config.gitlab.inputs import split_header

            header, text = split_header(text, label, self.findings)
        try:
            doc = load_yaml(text, label)
        except ConfigError as exc:
            first = exc.problems[0]
            what = first.message.removeprefix("YAML syntax error: ").removesuffix(" (fix the YAML)")
            what = redact_quoted(what)
            at = f" (line {first.line}, column {first.col})" if first.line > 0 else ""
            self.findings.include_error(entry.mark, f"{where}: not YAML: {what}{at}")
            return None
        if doc is None:
            doc = MarkedDict(Mark(label, 1, 1))
        if not isinstance(doc, MarkedDict):
            self.findings.include_error(
                entry.mark, f"{where}: not a mapping of keywords and jobs, got {type_name(doc)}"
            )
            return None
        return label, with_inputs(
            doc, header, entry.inputs, entry.mark, self.findings, self._expand
        )

    def _expand(self, text: str) -> str:
        """`expand_vars` of an input: the variables `include` sees (none without an event)."""
        conditions = self.sources.conditions
        return text if conditions is None else expand(text, conditions.variables)


def _body_problem(body: bytes, entry: IncludeEntry) -> str | None:
    """Why a fetched body cannot be used, or None."""
    if entry.integrity is not None:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        if f"sha256-{digest}" != entry.integrity:
            return f"integrity check failed: the file's hash is sha256-{digest}"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return None
