"""GitLab `inherit:` — which `default:` keywords and which global variables a job receives.

Owns: `inherit:default` (true, false, or a list of `default:` keywords) and
`inherit:variables` (true, false, or a list of global variable names), their validation
(an unknown key or keyword is an error with did-you-mean, as GitLab's linter reports it; a
listed variable that is not global is a warning, since GitLab accepts it), and giving a job
the `default:` keywords it inherits and does not set itself.
Must not: decide variable values (Job.inherit_variables carries the choice to the planner
and the engine) or read files.
"""

from __future__ import annotations

from collections.abc import Collection

from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.keywords import DEFAULT_KEYS
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Mark
from conveyor.suggest import did_you_mean

__all__ = ["INHERIT_KEYS", "apply_inherit"]

INHERIT_KEYS = frozenset({"default", "variables"})


def _choice(
    inherit: MarkedDict,
    key: str,
    known: Collection[str],
    where: str,
    findings: Findings,
) -> tuple[bool | frozenset[str], list[tuple[str, Mark]]]:
    """(True, False or the listed names; the names not in `known`, with their marks)."""
    raw = inherit.get(key, True)
    if isinstance(raw, bool):
        return raw, []
    if not (isinstance(raw, list) and all(isinstance(item, str) for item in raw)):
        findings.error(
            inherit.value_mark(key),
            f"{where}: inherit:{key} must be true, false or a list of names, got {type_name(raw)}",
        )
        return True, []
    unknown = [
        (str(item), raw.item_mark(i) if isinstance(raw, MarkedList) else inherit.value_mark(key))
        for i, item in enumerate(raw)
        if item not in known
    ]
    return frozenset(str(item) for item in raw), unknown


def _choices(
    body: MarkedDict, global_names: Collection[str], where: str, findings: Findings
) -> tuple[bool | frozenset[str], bool | frozenset[str]]:
    """(inherit:default, inherit:variables) of a job, checked."""
    inherit = body.get("inherit")
    if inherit is None:
        return True, True
    if not isinstance(inherit, MarkedDict):
        findings.error(
            body.value_mark("inherit"),
            f"{where}: inherit must be a mapping with default and/or variables, "
            f"got {type_name(inherit)}",
        )
        return True, True
    for key in inherit:
        if key not in INHERIT_KEYS:
            findings.error(
                inherit.key_mark(key),
                f"{where}: unknown inherit keyword {key}{did_you_mean(key, INHERIT_KEYS)}",
            )
    defaults, unknown_keywords = _choice(inherit, "default", DEFAULT_KEYS, where, findings)
    for name, mark in unknown_keywords:
        findings.error(
            mark,
            f"{where}: inherit:default names {name}, which is not a default: keyword"
            f"{did_you_mean(name, DEFAULT_KEYS)}",
        )
    variables, unknown_names = _choice(inherit, "variables", global_names, where, findings)
    for name, mark in unknown_names:
        findings.warn_once(
            f"inherit:variables:{name}",
            mark,
            f"{where}: inherit:variables names {name}, which is not a global variable"
            f"{did_you_mean(name, global_names)} (it has no effect)",
        )
    return defaults, variables


def apply_inherit(
    name: str,
    body: MarkedDict,
    defaults: MarkedDict,
    global_names: Collection[str],
    findings: Findings,
) -> tuple[MarkedDict, bool | frozenset[str]]:
    """(the job with the `default:` keywords it inherits and does not set itself, without
    its `inherit:` key; which global variables it receives)."""
    inherit_default, inherit_variables = _choices(body, global_names, f'job "{name}"', findings)
    wanted = set(defaults) if inherit_default is True else set()
    if isinstance(inherit_default, frozenset):
        wanted = set(defaults) & inherit_default
    job = MarkedDict(body.mark)
    for key in defaults:
        if key in wanted and key not in body:
            job[key] = defaults[key]
            job.key_marks[key] = defaults.key_mark(key)
            job.value_marks[key] = defaults.value_mark(key)
    for key, value in body.items():
        if key != "inherit":
            job[key] = value
            job.key_marks[key] = body.key_mark(key)
            job.value_marks[key] = body.value_mark(key)
    return job, inherit_variables
