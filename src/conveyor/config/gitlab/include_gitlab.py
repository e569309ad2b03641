"""`include: project`, `template` and `component` read from a configured GitLab instance.

Owns: turning such an entry into the files to read from the GitLabFiles the I/O edge
gives (config.remote): a project's `file:` list at `ref`; a template by name; a component
`HOST/GROUP/PROJECT/NAME@VERSION` as GitLab lays it out (`templates/NAME.yml`, else
`templates/NAME/template.yml` of GROUP/PROJECT at VERSION; `$CI_SERVER_FQDN` and
`$CI_SERVER_HOST` are the instance's host; `~latest` is the default branch), and an
`include: local` inside a project file or component, read from that same project and ref.
Each file is parsed with its `spec:inputs` applied (document.with_inputs). A file that
cannot be had now (IncludeUnreachable: offline, not cached) makes the include unavailable
(Findings.include_unavailable); any other failure is an error of the include.
Must not: fetch anything itself or know HTTP: that is the GitLabFiles adapter's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.config.gitlab.document import with_inputs
from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.include_entries import IncludeEntry
from conveyor.config.remote import GitLabFiles
from conveyor.config.yamlload import MarkedDict, load_yaml, type_name
from conveyor.errors import ConfigError, IncludeFetchError, IncludeUnreachable
from conveyor.model import Mark

__all__ = ["ProjectOrigin", "gitlab_documents", "project_local"]

_SERVER = re.compile(r"\$\{?CI_SERVER_(?:FQDN|HOST)\}?")


@dataclass(frozen=True, slots=True)
class ProjectOrigin:
    """Where a fetched file came from: its `include: local` entries are read from here."""

    project: str
    ref: str | None


Document = tuple[str, MarkedDict, ProjectOrigin | None]


def _parse(
    label: str,
    body: bytes,
    entry: IncludeEntry,
    findings: Findings,
    expand: Callable[[str], str] | None,
) -> MarkedDict | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.include_error(entry.mark, f"{entry.described}: not UTF-8 text ({exc.reason})")
        return None
    header = None
    if text.startswith("spec") or "\nspec" in text:
        from conveyor.config.gitlab.inputs import split_header

        header, text = split_header(text, label, findings)
    try:
        doc = load_yaml(text, label)
    except ConfigError as exc:
        findings.problems.extend(exc.problems)
        return None
    if doc is None:
        doc = MarkedDict(Mark(label, 1, 1))
    if not isinstance(doc, MarkedDict):
        findings.include_error(
            entry.mark,
            f"{entry.described}: not a mapping of keywords and jobs, got {type_name(doc)}",
        )
        return None
    return with_inputs(doc, header, entry.inputs, entry.mark, findings, expand)


def _fetch(entry: IncludeEntry, findings: Findings, fetch: Callable[[], bytes]) -> bytes | None:
    try:
        return fetch()
    except IncludeUnreachable as exc:
        findings.include_unavailable(entry.mark, entry.described, str(exc))
    except IncludeFetchError as exc:
        findings.include_error(entry.mark, f"{entry.described}: {exc}")
    return None


def _component(entry: IncludeEntry, gitlab: GitLabFiles) -> tuple[str, str, str | None] | None:
    """(project, name, ref) of a component address on this instance, None elsewhere."""
    address, _, version = _SERVER.sub(gitlab.host, entry.location).partition("@")
    host, _, path = address.partition("/")
    project, _, name = path.rpartition("/")
    if host != gitlab.host or not project or not name:
        return None
    return project, name, (None if version in ("", "~latest") else version)


def project_local(
    entry: IncludeEntry,
    origin: ProjectOrigin,
    gitlab: GitLabFiles,
    findings: Findings,
    expand: Callable[[str], str] | None,
) -> list[Document]:
    """An `include: local` inside a file of project `origin`: that project's file."""
    path = entry.location.lstrip("/")
    label = f"{origin.project}:{path}"
    body = _fetch(entry, findings, lambda: gitlab.project_file(origin.project, path, origin.ref))
    doc = None if body is None else _parse(label, body, entry, findings, expand)
    return [] if doc is None else [(label, doc, origin)]


def gitlab_documents(
    entry: IncludeEntry,
    gitlab: GitLabFiles,
    findings: Findings,
    expand: Callable[[str], str] | None,
) -> list[Document]:
    """(label, document, origin) for each file a project, template or component entry
    names; [] when reported (unavailable, or an error)."""
    wanted: list[tuple[str, Callable[[], bytes], ProjectOrigin | None]] = []
    if entry.kind == "template":
        name = entry.location
        wanted.append((f"template:{name}", lambda: gitlab.template(name), None))
    elif entry.kind == "project":
        origin = ProjectOrigin(entry.location, entry.ref)
        for path in entry.files:
            file = path.lstrip("/")

            def read(file: str = file) -> bytes:
                return gitlab.project_file(origin.project, file, origin.ref)

            wanted.append((f"{origin.project}:{file}", read, origin))
    else:
        found = _component(entry, gitlab)
        if found is None:
            why = f"its host is not the configured instance {gitlab.host}"
            findings.include_unavailable(entry.mark, entry.described, why)
            return []
        project, name, ref = found
        origin = ProjectOrigin(project, ref)

        def read_component() -> bytes:
            try:
                return gitlab.project_file(project, f"templates/{name}.yml", ref)
            except IncludeUnreachable:
                raise
            except IncludeFetchError:
                return gitlab.project_file(project, f"templates/{name}/template.yml", ref)

        wanted.append((f"{project}:{name}", read_component, origin))
    documents: list[Document] = []
    for label, fetch, file_origin in wanted:
        body = _fetch(entry, findings, fetch)
        doc = None if body is None else _parse(label, body, entry, findings, expand)
        if doc is not None:
            documents.append((label, doc, file_origin))
    return documents
