"""One GitLab CI/CD file's text -> its top-level mapping, and where local files come from.

Owns: `load_document` (YAML with marks; an empty file is an empty mapping; anything but a
mapping is reported) used for the main file (parse.py) and for every included file
(includes.py), and `Reader`, the function the I/O edge gives for `include: local`.
Must not: read files itself, or import parse.py or includes.py (both import this module).
"""

from __future__ import annotations

from collections.abc import Callable

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, load_yaml, type_name
from conveyor.errors import ConfigError
from conveyor.model import Mark

__all__ = ["Reader", "load_document"]

# pattern (repository-relative, no leading "/") -> [(file label, text)], [] when none match.
Reader = Callable[[str], list[tuple[str, str]]]


def load_document(text: str, file: str, findings: Findings) -> MarkedDict | None:
    """One file's YAML as a mapping (an empty file is an empty one), or None when it is
    not valid YAML or not a mapping (reported)."""
    try:
        doc = load_yaml(text, file)
    except ConfigError as exc:
        findings.problems.extend(exc.problems)
        return None
    if doc is None:
        return MarkedDict(Mark(file, 1, 1))
    if not isinstance(doc, MarkedDict):
        findings.error(
            Mark(file, 1, 1),
            f"the file must be a mapping of keywords and jobs, got {type_name(doc)}",
        )
        return None
    return doc
