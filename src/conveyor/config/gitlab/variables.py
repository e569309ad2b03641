"""GitLab `variables:` values (global, job, `rules`, `workflow:rules`) → text.

Owns: what a variable's value becomes, as GitLab's YAML loader and its `variables:` entry
hand it to a job: strings as written, integers as digits, `null` as "", booleans as
"true"/"false", floats as Ruby prints them; `{value: ..., description: ...}` mappings; and
the error for a value that is none of these (a list, a mapping without value).
Must not: expand variables (the planner and the engine do) or read anything.
"""

from __future__ import annotations

import math

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, type_name
from conveyor.model import Mark

__all__ = ["string_map", "variable_text"]


def variable_text(value: object) -> str | None:
    """A `variables:` value as the text GitLab gives the job, or None when it is not a
    scalar: null is "", booleans are "true"/"false", floats print as Ruby prints them
    (`3.10` -> "3.1", `1e16` -> "1.0e+16"), as GitLab's YAML loader hands them over."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _ruby_float(value)
    if isinstance(value, str | int):
        return str(value)
    return None


def _ruby_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    mantissa, has_exponent, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent}" if has_exponent else mantissa


def string_map(raw: object, mark: Mark, where: str, findings: Findings) -> dict[str, str]:
    """GitLab `variables:`: names to strings (scalars converted by `variable_text`);
    `{value: ...}` allowed."""
    if raw is None:
        return {}
    if not isinstance(raw, MarkedDict):
        findings.error(mark, f"{where}: variables must be a mapping, got {type_name(raw)}")
        return {}
    values: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, MarkedDict):
            value = value.get("value", "")
        text = variable_text(value)
        if text is None:
            findings.error(
                raw.value_mark(name),
                f"{where}: variable {name} must be a string, a number or a boolean, got "
                f"{type_name(value)} (write its value as one string)",
            )
            continue
        values[name] = text
    return values
