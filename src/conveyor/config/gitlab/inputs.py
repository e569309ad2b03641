"""GitLab CI/CD inputs: the `spec: inputs:` header of a file and `$[[ inputs.x ]]`.

Owns: splitting a file into its header document (`spec:` alone, then `---`) and its
configuration (`split_header`, blank lines keep every line number), checking the values an
`include: inputs:` gives (or, for the main file, the defaults) against the spec — unknown
names, missing mandatory inputs, `type` (string, number, boolean, array), `options`,
`regex` (RE2, as GitLab) — the values given when the pipeline is created (`--input
NAME=VALUE`, `pipeline_inputs`: text typed as the spec says) — and interpolating
`$[[ inputs.NAME ]]` in keys and values with the functions `expand_vars` (the variables
known to `include`) and `truncate(offset, length)`. A value that is one whole
`$[[ ... ]]` keeps its type (an array stays an array), as GitLab's interpolation does;
inside text it is written as text.
Must not: read files, or interpolate a file without a header (GitLab leaves `$[[` alone
there).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, MarkedList, load_yaml, type_name
from conveyor.errors import ConfigError
from conveyor.model import Mark
from conveyor.suggest import did_you_mean

__all__ = ["Inputs", "interpolate", "pipeline_inputs", "resolve_inputs", "split_header"]

Inputs = dict[str, object]

_DOCUMENT_START = re.compile(r"^---[ \t]*(#.*)?$", re.MULTILINE)
_BLOCK = re.compile(r"\$\[\[\s*(.*?)\s*\]\]")
_TRUNCATE = re.compile(r"truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)\Z")
_SPEC_KEYS = frozenset({"default", "type", "description", "options", "regex"})
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "array": list,
}
MAX_FUNCTIONS = 3  # GitLab's limit of functions in one interpolation block


def split_header(text: str, file: str, findings: Findings) -> tuple[MarkedDict | None, str]:
    """(the `spec:` header, the configuration's text) of a file; (None, text) when the file
    has no header. The text keeps its line numbers (the header's lines are blanked)."""
    if "spec" not in text:
        return None, text
    for match in _DOCUMENT_START.finditer(text):
        head = text[: match.start()]
        if not re.search(r"^spec\s*:", head, re.MULTILINE):
            return None, text
        try:
            header = load_yaml(head, file)
        except ConfigError:
            return None, text
        if not (isinstance(header, MarkedDict) and set(header) == {"spec"}):
            return None, text
        rest = text[match.end() :]
        return header, "\n" * head.count("\n") + rest
    return None, text


def _spec_inputs(header: MarkedDict, findings: Findings) -> MarkedDict:
    spec = header["spec"]
    if not isinstance(spec, MarkedDict):
        findings.error(header.value_mark("spec"), "spec must be a mapping with inputs")
        return MarkedDict(header.mark)
    for key in spec:
        if key not in ("inputs", "include", "description"):
            findings.error(spec.key_mark(key), f"spec: unknown keyword {key}")
    inputs = spec.get("inputs") or MarkedDict(spec.mark)
    if not isinstance(inputs, MarkedDict):
        findings.error(spec.value_mark("inputs"), "spec:inputs must be a mapping of inputs")
        return MarkedDict(spec.mark)
    return inputs


def _check(name: str, value: object, rule: MarkedDict, mark: Mark, findings: Findings) -> bool:
    kind = rule.get("type", "string")
    where = f"input {name}"
    if kind not in _TYPES:
        findings.error(
            rule.value_mark("type"), f"{where}: type must be string, number, boolean or array"
        )
        return False
    expected = _TYPES[kind]
    if (isinstance(value, bool) and kind == "number") or not isinstance(value, expected):
        findings.error(mark, f"{where}: expected a {kind}, got {type_name(value)}")
        return False
    options = rule.get("options")
    if isinstance(options, list) and value not in options:
        shown = ", ".join(str(option) for option in options)
        findings.error(mark, f"{where}: {value!r} is not one of its options ({shown})")
        return False
    pattern = rule.get("regex")
    if isinstance(pattern, str) and isinstance(value, str):
        from conveyor.config.expr_regex import compile_text

        regex = compile_text(pattern)
        if regex is None:
            findings.error(rule.value_mark("regex"), f"{where}: regex is not a valid RE2 pattern")
            return False
        if regex.search(value) is None:
            findings.error(mark, f"{where}: {value!r} does not match its regex {pattern}")
            return False
    return True


def _typed(kind: object, text: str) -> tuple[object, bool]:
    """(`text` as a value of the spec's type, True) or (text, False). As GitLab reads the
    inputs of a new pipeline from text: a number as an integer or decimal, a boolean as
    `true`/`false`, an array as a JSON array."""
    if kind == "number":
        for convert in (int, float):
            try:
                number = convert(text)
            except ValueError:
                continue
            return number, math.isfinite(number)
        return text, False
    if kind == "boolean":
        return text == "true", text in ("true", "false")
    if kind == "array":
        try:
            array = json.loads(text)
        except ValueError:
            return text, False
        return array, isinstance(array, list)
    return text, True


def pipeline_inputs(
    header: MarkedDict | None, given: Mapping[str, str], file: str, findings: Findings
) -> MarkedDict | None:
    """The main file's inputs given when the pipeline is created (`--input NAME=VALUE`,
    text), typed as its `spec:inputs` says, as an `include: inputs:` mapping whose marks
    are the declarations (resolve_inputs checks options and regex there). An input the spec
    does not declare, or text that is not of its type, is reported."""
    if header is None:
        if given:
            findings.error(
                Mark(file, 1, 1),
                f"--input {next(iter(given))}: the file has no spec:inputs header "
                "(declare its inputs in a spec: document, then ---)",
            )
        return None
    spec = _spec_inputs(header, findings)
    values = MarkedDict(spec.mark)
    for name, text in given.items():
        if name not in spec:
            findings.error(
                spec.mark,
                f"--input {name}: not in the file's spec:inputs{did_you_mean(name, spec)}",
            )
            continue
        rule = spec[name]
        kind = rule.get("type", "string") if isinstance(rule, MarkedDict) else "string"
        value, ok = _typed(kind, text)
        if not ok:
            findings.error(
                spec.key_mark(name),
                f"--input {name}={text}: expected {'an' if kind == 'array' else 'a'} {kind} "
                f"({_HOW_WRITTEN.get(str(kind), 'text')})",
            )
            continue
        values[name] = value
        values.key_marks[name] = spec.key_mark(name)
        values.value_marks[name] = spec.key_mark(name)
    return values


_HOW_WRITTEN = {
    "number": "e.g. 3 or 1.5",
    "boolean": "true or false",
    "array": 'a JSON array, e.g. ["a", "b"]',
}


def resolve_inputs(
    header: MarkedDict, given: MarkedDict | None, where: Mark, findings: Findings
) -> Inputs:
    """The inputs of a file: `given` (an `include: inputs:`; None for the main file) or
    the defaults, each checked against the header's spec."""
    spec = _spec_inputs(header, findings)
    values: Inputs = {}
    for name in given or {}:
        if name not in spec:
            findings.error(
                given.key_mark(name) if given is not None else where,
                f"input {name} is not in the file's spec:inputs{did_you_mean(name, spec)}",
            )
    for name, raw_rule in spec.items():
        rule = raw_rule if isinstance(raw_rule, MarkedDict) else MarkedDict(spec.key_mark(name))
        for key in rule:
            if key not in _SPEC_KEYS:
                findings.error(
                    rule.key_mark(key),
                    f"input {name}: unknown keyword {key}{did_you_mean(key, _SPEC_KEYS)}",
                )
        if given is not None and name in given:
            value, mark = given[name], given.value_mark(name)
        elif "default" in rule:
            value, mark = rule["default"], rule.value_mark("default")
        else:
            findings.error(
                where,
                f"input {name} has no default: give it a value (include: inputs: {{{name}: ...}})",
            )
            value, mark = "", where
        if not _check(name, value, rule, mark, findings):
            value = rule.get("default", value)  # reported: its uses should not add errors
        values[name] = value
    return values


def _apply(
    expression: str, inputs: Inputs, expand: Callable[[str], str] | None
) -> tuple[object, str | None]:
    """(the value of one `$[[ ... ]]` block, None) or (None, what is wrong)."""
    parts = [part.strip() for part in expression.split("|")]
    head, functions = parts[0], parts[1:]
    if not head.startswith("inputs."):
        return None, f"$[[ {expression} ]]: only inputs.NAME can be interpolated here"
    name = head.removeprefix("inputs.")
    if name not in inputs:
        return None, f"$[[ {expression} ]]: unknown input {name}{did_you_mean(name, inputs)}"
    if len(functions) > MAX_FUNCTIONS:
        return None, f"$[[ {expression} ]]: at most {MAX_FUNCTIONS} functions"
    value = inputs[name]
    for function in functions:
        truncate = _TRUNCATE.match(function)
        if function == "expand_vars":
            text = _text(value)
            value = expand(text) if expand is not None else text
        elif truncate is not None:
            start, length = int(truncate.group(1)), int(truncate.group(2))
            value = _text(value)[start : start + length]
        else:
            return None, f"$[[ {expression} ]]: unknown function {function} (expand_vars, truncate)"
    return value, None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _interpolate_text(
    text: str, mark: Mark, inputs: Inputs, expand: Callable[[str], str] | None, findings: Findings
) -> object:
    whole = _BLOCK.fullmatch(text)
    if whole is not None:
        value, problem = _apply(whole.group(1), inputs, expand)
        if problem is not None:
            findings.error(mark, problem)
        return value if problem is None else text

    def replace(match: re.Match[str]) -> str:
        value, problem = _apply(match.group(1), inputs, expand)
        if problem is not None:
            findings.error(mark, problem)
            return match.group(0)
        return _text(value) if not isinstance(value, list | dict) else str(value)

    return _BLOCK.sub(replace, text)


def interpolate(
    value: object,
    mark: Mark,
    inputs: Inputs,
    findings: Findings,
    expand: Callable[[str], str] | None = None,
) -> object:
    """`value` (a loaded document or part of one) with every `$[[ inputs.x ]]` replaced;
    `expand` expands variables for `expand_vars` (None: the text is kept as it is)."""
    if isinstance(value, str):
        return _interpolate_text(value, mark, inputs, expand, findings) if "$[[" in value else value
    if isinstance(value, MarkedDict):
        copy = MarkedDict(value.mark)
        for key, item in value.items():
            new_key = key
            if "$[[" in key:
                new_key = _text(
                    _interpolate_text(key, value.key_mark(key), inputs, expand, findings)
                )
            copy[new_key] = interpolate(item, value.value_mark(key), inputs, findings, expand)
            copy.key_marks[new_key] = value.key_mark(key)
            copy.value_marks[new_key] = value.value_mark(key)
            if key in value.value_texts:
                copy.value_texts[new_key] = value.value_texts[key]
        return copy
    if isinstance(value, MarkedList):
        items = MarkedList(value.mark)
        for index, item in enumerate(value):
            items.append(interpolate(item, value.item_mark(index), inputs, findings, expand))
            items.item_marks.append(value.item_mark(index))
        return items
    return value
