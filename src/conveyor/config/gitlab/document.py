"""One GitLab CI/CD file's text -> its top-level mapping, and where local files come from.

Owns: `load_document` (YAML with marks; an empty file is an empty mapping; anything but a
mapping is reported; a `spec:` header's inputs applied, inputs.py) used for the main file
(parse.py) and for every included file (includes.py), and `Reader`, the function the I/O
edge gives for `include: local`.
Must not: read files itself, or import parse.py or includes.py (both import this module).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, load_yaml, type_name
from conveyor.errors import ConfigError
from conveyor.model import Mark

__all__ = ["Reader", "load_document", "with_inputs"]

# pattern (repository-relative, no leading "/") -> [(file label, text)], [] when none match.
Reader = Callable[[str], list[tuple[str, str]]]


def load_document(
    text: str,
    file: str,
    findings: Findings,
    *,
    given_inputs: MarkedDict | None = None,
    include_mark: Mark | None = None,
    expand: Callable[[str], str] | None = None,
    pipeline_inputs: Mapping[str, str] | None = None,
) -> MarkedDict | None:
    """One file's YAML as a mapping (an empty file is an empty one), or None when it is not
    valid YAML or not a mapping (reported). A `spec:` header (then `---`) declares inputs:
    `given_inputs` (an `include: inputs:`, written at `include_mark`), for the main file
    `pipeline_inputs` (`--input NAME=VALUE`, text typed as the spec says), or their defaults
    are checked and `$[[ inputs.x ]]` interpolated (inputs.py; `expand` serves
    `expand_vars`)."""
    header = None
    if pipeline_inputs or text.startswith("spec") or "\nspec" in text:  # inputs.py if needed
        from conveyor.config.gitlab.inputs import pipeline_inputs as typed_inputs
        from conveyor.config.gitlab.inputs import split_header

        header, text = split_header(text, file, findings)
        if pipeline_inputs:
            given_inputs = typed_inputs(header, pipeline_inputs, file, findings)
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
    return with_inputs(
        doc, header, given_inputs, include_mark or Mark(file, 1, 1), findings, expand
    )


def with_inputs(
    doc: MarkedDict,
    header: MarkedDict | None,
    given: MarkedDict | None,
    mark: Mark,
    findings: Findings,
    expand: Callable[[str], str] | None = None,
) -> MarkedDict:
    """`doc` with its inputs interpolated (header None: as it is; inputs given to a file
    without a header are reported, as GitLab does)."""
    if header is None:
        if given:
            findings.error(
                mark, "include: inputs are given, but the file has no spec:inputs header"
            )
        return doc
    from conveyor.config.gitlab.inputs import interpolate, resolve_inputs

    inputs = resolve_inputs(header, given, mark, findings)
    result = interpolate(doc, doc.mark, inputs, findings, expand)
    return result if isinstance(result, MarkedDict) else doc
