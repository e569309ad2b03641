"""Whether one rule's conditions hold for an event, and if not, why. Pure.

Owns: `rule_mismatch`, the one evaluator of a rule's conditions (`on` events, `refs`,
`changes` with `compare_to`, `exists` with its `$VARS` expanded, `if`) used for jobs and
`workflow` by the planner (`plan`) and for `include:rules` by the GitLab loader
(`config.gitlab.include_rules`), so both decide a rule the same way and give the same reasons.
Must not: read files, run git or look at the clock: the edge fills Event.changed_files,
Event.files and Event.changes_by_ref.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence

from conveyor.config.expr import ExprError, evaluate, expand
from conveyor.errors import ConfigError, Problem
from conveyor.globs import match_any
from conveyor.model import Event, EventKind, Rule

__all__ = ["rule_mismatch"]


def _quoted_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def _compared_files(
    rule: Rule, event: Event, ref_context: Mapping[str, str], where: str
) -> tuple[str, ...] | None:
    """The changed files `rule.changes` looks at (None: unknown, so it holds)."""
    if rule.compare_to is None:
        return event.changed_files
    if event.changes_by_ref is None:
        return None
    ref = expand(rule.compare_to, ref_context)
    if ref not in event.changes_by_ref:
        mark = rule.mark
        raise ConfigError(
            [
                Problem(
                    mark.file if mark else "",
                    mark.line if mark else 0,
                    mark.col if mark else 0,
                    f"{where}: rules:changes:compare_to is not a valid ref: {json.dumps(ref)} "
                    "(name a branch, tag or commit that exists in the repository)",
                )
            ]
        )
    return event.changes_by_ref[ref]


def rule_mismatch(
    rule: Rule,
    event: Event,
    variables: Mapping[str, str],
    *,
    ref_context: Mapping[str, str] | None = None,
    where: str = "rules",
) -> str | None:
    """None when every condition of `rule` holds, else why the first one does not.
    `ref_context` expands `compare_to` (default: `variables`). Raises ConfigError when
    `compare_to` names a ref that Event.changes_by_ref lacks."""
    if rule.events is not None and event.kind not in rule.events:
        names = [str(kind) for kind in EventKind if kind in rule.events]
        return f"event {event.kind} not in on: [{', '.join(names)}]"
    if rule.refs is not None and not any(fnmatch.fnmatchcase(event.ref, p) for p in rule.refs):
        return f"ref {json.dumps(event.ref)} matches none of {_quoted_list(rule.refs)}"
    if rule.changes is not None:
        changed = _compared_files(
            rule, event, variables if ref_context is None else ref_context, where
        )
        if changed is not None and not match_any(rule.changes, changed):
            since = "" if rule.compare_to is None else f" since {rule.compare_to}"
            return f"no changed file{since} matches {_quoted_list(rule.changes)}"
    if rule.exists is not None and event.files is not None:
        # GitLab expands job and pipeline variables in exists paths.
        exists = tuple(expand(path, variables) for path in rule.exists)
        if not match_any(exists, event.files):
            return f"no file matches {_quoted_list(exists)}"
    if rule.if_expr is not None:
        try:
            holds = evaluate(rule.if_expr, variables)
        except ExprError as exc:
            return f"if {json.dumps(rule.if_expr)} is not a valid expression ({exc})"
        if not holds:
            return f"if {json.dumps(rule.if_expr)} is false"
    return None
