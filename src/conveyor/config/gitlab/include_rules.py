"""`include:rules` — whether a conditional include is part of the pipeline. Pure.

Owns: GitLab's decision for one include entry. No `rules`: included. Otherwise the first
rule whose conditions all hold decides (`when: never` leaves the file out, `always` or no
`when` includes it); when no rule holds the file is left out. The conditions are decided
as the planner decides them (`config.conditions.rule_mismatch`: one evaluator for jobs,
workflow and includes), seen with the variables GitLab gives includes
(`variables.include_variables`: the predefined and the event's variables, never the file's
own `variables:`, which are read after the includes). `exists` looks at the event's file
list, or when it is unknown at the repository's files listed by the edge; `changes` at the
paths the push changed (they hold for tags and for other events, as for jobs);
`changes:compare_to` at what the edge's `changes_since` finds (None: not looked up, so such
rules hold).
Must not: read files or run git (the edge passes functions that do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.config.conditions import rule_mismatch
from conveyor.config.expr import expand
from conveyor.model import Event, EventKind, Rule, When
from conveyor.variables import include_variables

__all__ = ["ChangesSince", "IncludeConditions", "include_conditions", "include_exclusion"]

# refs -> {ref: paths changed from its merge base with the commit}, a ref git cannot resolve
# left out; None when it cannot be known (outside git, no commit).
ChangesSince = Callable[[Sequence[str]], Mapping[str, tuple[str, ...]] | None]


@dataclass(frozen=True, slots=True)
class IncludeConditions:
    """What `include:rules` are decided with: the event being planned and its variables."""

    event: Event
    variables: Mapping[str, str]
    list_files: Callable[[], Sequence[str]] | None = None  # used when event.files is None
    changes_since: ChangesSince | None = None


def include_conditions(
    event: Event,
    *,
    list_files: Callable[[], Sequence[str]] | None = None,
    changes_since: ChangesSince | None = None,
) -> IncludeConditions:
    """Conditions for `event`, with the variables GitLab gives `include` sections."""
    return IncludeConditions(event, include_variables(event), list_files, changes_since)


def _event_for(rule: Rule, conditions: IncludeConditions) -> Event:
    """The event `rule` is checked against, with what the edge knows filled in."""
    event = conditions.event
    if event.kind is EventKind.TAG:
        event = replace(event, changed_files=None)  # GitLab: changes hold for tags
    if rule.exists is not None and event.files is None and conditions.list_files is not None:
        event = replace(event, files=tuple(conditions.list_files()))
    if rule.compare_to is not None and event.changes_by_ref is None:
        ref = expand(rule.compare_to, conditions.variables)
        found = conditions.changes_since([ref]) if conditions.changes_since else None
        event = replace(event, changes_by_ref=found)
    return event


def include_exclusion(rules: Sequence[Rule], conditions: IncludeConditions) -> str | None:
    """None when a file with these `include:rules` is included, else why it is not.
    Raises ConfigError when `changes:compare_to` names a ref that does not exist."""
    reasons: list[str] = []
    for rule in rules:
        event = _event_for(rule, conditions)
        reason = rule_mismatch(rule, event, conditions.variables, where="include:rules")
        if reason is None:
            if rule.when is When.NEVER:
                line = f" at line {rule.mark.line}" if rule.mark else ""
                return f"the rule{line} says when: never"
            return None
        reasons.append(reason)
    return "no rule matches (" + "; ".join(reasons) + ")" if reasons else "no rule matches"
