"""`include:` entries → IncludeEntry: what to include, from where, under which rules.

Owns: the forms of one `include:` value (a string, a list, `{local: ...}`, `{remote: ...}`,
with `rules` and `integrity`), telling a local path from a URL (a string that starts with
`http://` or `https://` is `include:remote`, as GitLab does), checking remote URLs (http or
https only, a host, never credentials in the URL) and `include:rules` (`if`, `exists`,
`changes`, `when: never|always`), and the URL shown in messages and marks (no credentials,
query or fragment: a query may carry a token). `template`, `project` (with `file`, `ref`)
and `component` are parsed too: they need a GitLab server (includes.py decides what
happens when none can be read).
Must not: read files, fetch URLs or decide rules (includes.py and include_rules.py do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.keywords import INCLUDE_KINDS
from conveyor.config.gitlab.rules import translate_rule
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Mark, Rule, When
from conveyor.suggest import did_you_mean

__all__ = ["IncludeEntry", "parse_include", "shown_url"]

INCLUDE_RULE_KEYS = frozenset({"if", "exists", "changes", "when"})
_ENTRY_KEYS = {
    "local": frozenset({"local", "rules", "inputs"}),
    "remote": frozenset({"remote", "rules", "inputs", "integrity"}),
    "template": frozenset({"template", "rules", "inputs"}),
    "project": frozenset({"project", "file", "ref", "rules", "inputs"}),
    "component": frozenset({"component", "rules", "inputs"}),
}
_VALUE_NAMES = {
    "local": "file path",
    "remote": "URL",
    "template": "template name",
    "project": "project path",
    "component": "component address",
}
_INTEGRITY = re.compile(r"sha256-[A-Za-z0-9+/]{43}=\Z")


@dataclass(frozen=True, slots=True)
class IncludeEntry:
    """One file (or local glob) to include. `rules` None: included unconditionally."""

    kind: str  # local, remote, template, project or component
    location: str  # a path or glob, the full URL, the template, project or component
    mark: Mark  # where the location is written
    rules: tuple[Rule, ...] | None = None
    integrity: str | None = None  # `sha256-BASE64` of the remote file's bytes
    files: tuple[str, ...] = ()  # include:project: the files of the project
    ref: str | None = None  # include:project: the ref (None: the project's default branch)
    inputs: MarkedDict | None = None  # include:inputs: values for the file's spec:inputs

    @property
    def described(self) -> str:
        """The include as messages name it: `include:project group/app (ci/a.yml@v1)`."""
        if self.kind == "remote":
            return f"include:remote {shown_url(self.location)}"
        if self.kind == "project":
            at = f"@{self.ref}" if self.ref else ""
            return f"include:project {self.location} ({', '.join(self.files)}{at})"
        return f"include:{self.kind} {self.location}"


def shown_url(url: str) -> str:
    """`url` for messages and marks: scheme, host, port and path only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _check_url(url: str, mark: Mark, findings: Findings) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        findings.error(mark, f"include:remote is not a valid URL ({exc})")
        return False
    if parts.scheme not in ("http", "https"):
        findings.error(mark, "include:remote must be an http:// or https:// URL")
        return False
    if not parts.hostname:
        findings.error(mark, f"include:remote {shown_url(url)}: the URL has no host")
        return False
    if parts.username is not None or parts.password is not None:
        findings.error(
            mark,
            f"include:remote {shown_url(url)}: the URL must not contain credentials "
            "(user:password@); GitLab fetches remote includes without authentication, "
            "so publish the file where it can be read without them",
        )
        return False
    return True


def parse_include(raw: object, mark: Mark, findings: Findings) -> list[IncludeEntry]:
    """The entries of one `include:` value, in order; problems go to `findings`."""
    items: list[tuple[object, Mark]]
    if isinstance(raw, MarkedList):
        items = [(item, raw.item_mark(i)) for i, item in enumerate(raw)]
    else:
        items = [(raw, mark)]
    entries: list[IncludeEntry] = []
    for item, item_mark in items:
        if isinstance(item, str):
            if not _is_url(item):
                entries.append(IncludeEntry("local", item, item_mark))
            elif _check_url(item, item_mark, findings):
                entries.append(IncludeEntry("remote", item, item_mark))
        elif isinstance(item, MarkedDict):
            entry = _entry_from_mapping(item, findings)
            if entry is not None:
                entries.append(entry)
        else:
            findings.error(
                item_mark,
                f"include: expected a file path or a mapping such as {{local: ci/build.yml}}, "
                f"got {type_name(item)}",
            )
    return entries


def _entry_from_mapping(item: MarkedDict, findings: Findings) -> IncludeEntry | None:
    kinds = [key for key in item if key in INCLUDE_KINDS]
    if len(kinds) != 1:
        unknown = [key for key in item if key not in INCLUDE_KINDS | {"rules", "inputs"}]
        hint = did_you_mean(unknown[0], INCLUDE_KINDS) if unknown else ""
        findings.error(
            item.mark,
            "include: each entry needs exactly one of local, remote, template, project, "
            f"component{hint}",
        )
        return None
    kind = kinds[0]
    for key in item:
        if key not in _ENTRY_KEYS[kind]:
            findings.error(
                item.key_mark(key),
                f"include:{kind}: unknown keyword {key}{did_you_mean(key, _ENTRY_KEYS[kind])}",
            )
    value = item[kind]
    if not isinstance(value, str) or not value:
        findings.error(
            item.value_mark(kind),
            f"include:{kind} must be a {_VALUE_NAMES[kind]}, got {type_name(value)}",
        )
        return None
    if kind == "remote" and not _check_url(value, item.value_mark(kind), findings):
        return None
    rules = _include_rules(item, findings) if "rules" in item else None
    files, ref = _project_files(item, findings) if kind == "project" else ((), None)
    inputs = item.get("inputs")
    if inputs is not None and not isinstance(inputs, MarkedDict):
        findings.error(item.value_mark("inputs"), "include:inputs must be a mapping of inputs")
        inputs = None
    return IncludeEntry(
        kind, value, item.value_mark(kind), rules, _integrity(item, findings), files, ref, inputs
    )


def _project_files(item: MarkedDict, findings: Findings) -> tuple[tuple[str, ...], str | None]:
    """include:project's `file` (a path or a list of paths) and `ref`."""
    raw = item.get("file")
    files = (raw,) if isinstance(raw, str) else raw
    if not (isinstance(files, list | tuple) and files and all(isinstance(f, str) for f in files)):
        findings.error(
            item.value_mark("file") if "file" in item else item.mark,
            "include:project needs file: a path or a list of paths in that project",
        )
        files = ()
    ref = item.get("ref")
    if ref is not None and not isinstance(ref, str | int | float):
        findings.error(item.value_mark("ref"), "include:project: ref must be a branch, tag or sha")
        ref = None
    return tuple(files), (None if ref is None else str(ref))


def _integrity(item: MarkedDict, findings: Findings) -> str | None:
    value = item.get("integrity")
    if value is None:
        return None
    if isinstance(value, str) and _INTEGRITY.match(value):
        return value
    findings.error(
        item.value_mark("integrity"),
        "include:integrity must be sha256- followed by the base64 SHA-256 of the file "
        "(openssl dgst -sha256 -binary FILE | base64)",
    )
    return None


def _include_rules(item: MarkedDict, findings: Findings) -> tuple[Rule, ...]:
    raw = item["rules"]
    if not isinstance(raw, MarkedList):
        findings.error(
            item.value_mark("rules"), f"include:rules must be a list, got {type_name(raw)}"
        )
        return ()
    rules: list[Rule] = []
    for index, rule_raw in enumerate(raw):
        if isinstance(rule_raw, MarkedDict) and rule_raw.get("when") not in (
            None,
            "never",
            "always",
        ):
            findings.error(
                rule_raw.value_mark("when"),
                f"include:rules: when must be never or always, got {rule_raw['when']!r}",
            )
            continue
        rule = translate_rule(
            rule_raw,
            raw.item_mark(index),
            "include:rules",
            (When.ALWAYS, None),
            INCLUDE_RULE_KEYS,
            findings,
        )
        if rule is not None:
            rules.append(rule)
    return tuple(rules)
