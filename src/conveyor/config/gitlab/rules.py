"""`rules`, `only`/`except`, `when` and `workflow: rules` → model.Rule.

Owns: GitLab's job-inclusion semantics expressed as the shared Rule model, so the same
planner decides both flavors:
  * `rules:` entries map one to one (a rule without `when` takes the job's `when`; a
    `when: manual` rule without `allow_failure` is blocking, as GitLab documents;
    `changes: {paths, compare_to}` keeps the ref on the Rule, `needs` replaces the job's
    needs when the rule matches);
  * `except:` becomes `when: never` rules placed first, `only:` the rules after them (keys
    of one policy must all match, entries of one key any); refs keywords become event
    kinds, names become ref globs, `/regex/` an `if` over CI_COMMIT_REF_NAME, and
    `ref@group/project` adds an `if` over CI_PROJECT_PATH;
  * a job with none of them gets GitLab's default `only: [branches, tags]`, which keeps it
    out of merge request pipelines.
Must not: evaluate anything (the planner does) or read files.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.config.expr import ExprError, validate_expression
from conveyor.config.gitlab.durations import parse_duration
from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.keywords import (
    RULE_KEYS,
    WHEN_VALUES,
    WORKFLOW_KEYS,
    WORKFLOW_RULE_KEYS,
)
from conveyor.config.gitlab.needs import RULE_NEED_KEYS, parse_needs
from conveyor.config.gitlab.variables import string_map
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import EventKind, Mark, Rule, When
from conveyor.suggest import did_you_mean

__all__ = [
    "DEFAULT_ONLY_EVENTS",
    "parse_when",
    "translate_only_except",
    "translate_rule",
    "translate_rules",
    "translate_workflow",
]

_BRANCH_EVENTS = frozenset({EventKind.PUSH, EventKind.MANUAL, EventKind.SCHEDULE})
DEFAULT_ONLY_EVENTS = _BRANCH_EVENTS | {EventKind.TAG}  # only: [branches, tags]

# only/except refs keywords → the event kinds of a local run that they cover. Sources that a
# local run never has (api, triggers, pipelines, chat, external…) cover none.
_REF_KEYWORDS: Mapping[str, frozenset[EventKind]] = {
    "branches": _BRANCH_EVENTS,
    "tags": frozenset({EventKind.TAG}),
    "merge_requests": frozenset({EventKind.MERGE_REQUEST, EventKind.PULL_REQUEST}),
    "schedules": frozenset({EventKind.SCHEDULE}),
    "web": frozenset({EventKind.MANUAL}),
    "pushes": frozenset({EventKind.PUSH, EventKind.TAG}),
    "api": frozenset(),
    "triggers": frozenset(),
    "pipelines": frozenset(),
    "chat": frozenset(),
    "external": frozenset(),
    "external_pull_requests": frozenset(),
}
_POLICY_KEYS = frozenset({"refs", "variables", "changes", "kubernetes"})
_CHANGES_KEYS = frozenset({"paths", "compare_to"})
_GLOB_CHARS = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


def parse_when(value: object, mark: Mark, where: str, findings: Findings) -> When | None:
    if isinstance(value, str) and value in WHEN_VALUES:
        return When(value)
    shown = value if isinstance(value, str) else type_name(value)
    hint = did_you_mean(value, WHEN_VALUES) if isinstance(value, str) else ""
    findings.error(
        mark, f"{where}: when must be one of {', '.join(WHEN_VALUES)}, got {shown!r}{hint}"
    )
    return None


def _strings(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    findings.error(mark, f"{where}: expected a list of strings, got {type_name(raw)}")
    return None


def _paths(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[str, ...] | None:
    """`exists` (or `only/except:changes`): a list of globs, or `{paths: [...]}`."""
    if isinstance(raw, MarkedDict):
        if "paths" not in raw:
            findings.error(mark, f"{where}: a mapping needs paths: [...]")
            return None
        return _strings(raw["paths"], raw.value_mark("paths"), f"{where}:paths", findings)
    return _strings(raw, mark, where, findings)


def _changes(
    raw: object, mark: Mark, where: str, findings: Findings
) -> tuple[tuple[str, ...] | None, str | None]:
    """`rules:changes`: (globs, compare_to) from a list or `{paths: [...], compare_to: ref}`."""
    if not isinstance(raw, MarkedDict):
        return _strings(raw, mark, where, findings), None
    for key in raw:
        if key not in _CHANGES_KEYS:
            findings.error(
                raw.key_mark(key), f"{where}: unknown key {key}{did_you_mean(key, _CHANGES_KEYS)}"
            )
    compare_to = raw.get("compare_to")
    if compare_to is not None and not (isinstance(compare_to, str) and compare_to.strip()):
        findings.error(
            raw.value_mark("compare_to"),
            f"{where}:compare_to must be a branch, tag or commit, got {type_name(compare_to)}",
        )
        compare_to = None
    if "paths" not in raw:
        findings.error(mark, f"{where}: a mapping needs paths: [...]")
        return None, compare_to
    return _strings(raw["paths"], raw.value_mark("paths"), f"{where}:paths", findings), compare_to


def _check_if(expr: object, mark: Mark, where: str, findings: Findings) -> str | None:
    if not isinstance(expr, str):
        findings.error(mark, f"{where}: if must be a string expression, got {type_name(expr)}")
        return None
    try:
        validate_expression(expr)
    except ExprError as exc:
        findings.error(mark, f'{where}: invalid expression "{expr}": {exc}')
        return None
    return expr


def _flatten(raw: MarkedList) -> list[tuple[object, Mark]]:
    """Rules lists may nest (from `!reference`); GitLab flattens them."""
    items: list[tuple[object, Mark]] = []
    for index, item in enumerate(raw):
        if isinstance(item, MarkedList):
            items.extend(_flatten(item))
        else:
            items.append((item, raw.item_mark(index)))
    return items


def translate_rules(
    raw: object,
    mark: Mark,
    where: str,
    job_when: When,
    job_start_in_s: float | None,
    findings: Findings,
) -> tuple[Rule, ...]:
    """A job's `rules:` list as Rules, in order."""
    if not isinstance(raw, MarkedList):
        findings.error(mark, f"{where}: rules must be a list, got {type_name(raw)}")
        return ()
    rules: list[Rule] = []
    for item, item_mark in _flatten(raw):
        rule = translate_rule(
            item, item_mark, where, (job_when, job_start_in_s), RULE_KEYS, findings
        )
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def translate_rule(
    item: object,
    mark: Mark,
    where: str,
    job_timing: tuple[When, float | None],
    keys: frozenset[str],
    findings: Findings,
) -> Rule | None:
    """One rule; a rule without `when` (or `start_in`) takes the job's (`job_timing`)."""
    job_when, job_start_in_s = job_timing
    if not isinstance(item, MarkedDict):
        findings.error(mark, f"{where}: each rule must be a mapping, got {type_name(item)}")
        return None
    for key in item:
        if key not in keys:
            findings.error(
                item.key_mark(key), f"{where}: unknown rule keyword {key}{did_you_mean(key, keys)}"
            )
    if "interruptible" in item:
        findings.warn_once(
            "rules:interruptible",
            item.key_mark("interruptible"),
            "rules:interruptible is not applied by conveyor",
        )
    when = job_when
    if "when" in item:
        when = parse_when(item["when"], item.value_mark("when"), where, findings) or job_when
    allow_failure: bool | None = None
    if "allow_failure" in item:
        value = item["allow_failure"]
        if isinstance(value, bool):
            allow_failure = value
        else:
            findings.error(
                item.value_mark("allow_failure"),
                f"{where}: rules allow_failure must be true or false, got {type_name(value)}",
            )
    elif "when" in item and when is When.MANUAL:
        allow_failure = False  # a manual rule blocks the pipeline unless it says otherwise
    start_in_s = job_start_in_s if when is When.DELAYED else None
    if "start_in" in item:
        start_in_s = parse_duration(item["start_in"])
        if start_in_s is None:
            findings.error(
                item.value_mark("start_in"),
                f"{where}: start_in must be a duration such as 30 minutes",
            )
    if when is When.DELAYED and start_in_s is None:
        findings.error(mark, f"{where}: when: delayed needs start_in (e.g. start_in: 5 minutes)")
    changes, compare_to = (
        _changes(item["changes"], item.value_mark("changes"), f"{where}: changes", findings)
        if "changes" in item
        else (None, None)
    )
    return Rule(
        if_expr=_check_if(item["if"], item.value_mark("if"), where, findings)
        if "if" in item
        else None,
        changes=changes,
        compare_to=compare_to,
        needs=parse_needs(
            item.get("needs"),
            item.value_mark("needs"),
            f"{where}: rules:needs",
            RULE_NEED_KEYS,
            findings,
        ),
        exists=_paths(item["exists"], item.value_mark("exists"), f"{where}: exists", findings)
        if "exists" in item
        else None,
        when=when,
        allow_failure=allow_failure,
        variables=string_map(item.get("variables"), item.value_mark("variables"), where, findings),
        start_in_s=start_in_s,
        mark=mark,
    )


def translate_workflow(raw: object, mark: Mark, findings: Findings) -> tuple[Rule, ...] | None:
    """`workflow:` → Pipeline.workflow (None when there are no workflow rules)."""
    if not isinstance(raw, MarkedDict):
        findings.error(mark, f"workflow must be a mapping, got {type_name(raw)}")
        return None
    for key in raw:
        if key not in WORKFLOW_KEYS:
            findings.error(
                raw.key_mark(key),
                f"workflow: unknown keyword {key}{did_you_mean(key, WORKFLOW_KEYS)}",
            )
    if "rules" not in raw:
        return None
    rules_raw = raw["rules"]
    if not isinstance(rules_raw, MarkedList):
        findings.error(raw.value_mark("rules"), "workflow:rules must be a list")
        return None
    rules: list[Rule] = []
    for item, item_mark in _flatten(rules_raw):
        if isinstance(item, MarkedDict) and item.get("when", "always") not in ("always", "never"):
            findings.error(item.value_mark("when"), "workflow:rules: when must be always or never")
            continue
        rule = translate_rule(
            item, item_mark, "workflow:rules", (When.ALWAYS, None), WORKFLOW_RULE_KEYS, findings
        )
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _ref_rule_parts(ref: str) -> tuple[frozenset[EventKind] | None, tuple[str, ...] | None, str]:
    """(events, ref globs, if expression) for one only/except refs entry. `ref@group/project`
    holds only in the project of that full path (GitLab compares CI_PROJECT_PATH; a fork's
    pipeline does not match), whatever `ref` is: a keyword, a /regex/ or a name."""
    pattern, project = ref, ""
    if "@" in ref and not ref.endswith("/"):
        pattern, _, project = ref.rpartition("@")
    in_project = f'$CI_PROJECT_PATH == "{project}"' if project else ""
    if pattern in _REF_KEYWORDS:
        return _REF_KEYWORDS[pattern], None, in_project
    if len(pattern) >= 2 and pattern.startswith("/") and "/" in pattern[1:]:
        expr = f"$CI_COMMIT_REF_NAME =~ {pattern}"
        return DEFAULT_ONLY_EVENTS, None, f"({expr}) && ({in_project})" if project else expr
    return DEFAULT_ONLY_EVENTS, (pattern.translate(_GLOB_CHARS),), in_project


def _policy_rules(
    raw: object, mark: Mark, where: str, when: When, start_in_s: float | None, findings: Findings
) -> tuple[Rule, ...] | None:
    refs: tuple[str, ...] | None = None
    variables: tuple[str, ...] | None = None
    changes: tuple[str, ...] | None = None
    if isinstance(raw, MarkedDict):
        for key in raw:
            if key not in _POLICY_KEYS:
                findings.error(
                    raw.key_mark(key),
                    f"{where}: unknown key {key}{did_you_mean(key, _POLICY_KEYS)}",
                )
        if "kubernetes" in raw:
            findings.warn_once(
                f"{where}:kubernetes",
                raw.key_mark("kubernetes"),
                f"{where}:kubernetes is not evaluated by conveyor (treated as matching)",
            )
        if "refs" in raw:
            refs = _strings(raw["refs"], raw.value_mark("refs"), f"{where}:refs", findings)
        if "variables" in raw:
            variables = _strings(
                raw["variables"], raw.value_mark("variables"), f"{where}:variables", findings
            )
            for expr in variables or ():
                _check_if(expr, raw.value_mark("variables"), f"{where}:variables", findings)
        if "changes" in raw:
            changes = _paths(
                raw["changes"], raw.value_mark("changes"), f"{where}:changes", findings
            )
    else:
        refs = _strings(raw, mark, where, findings)
        if refs is None:
            return None
    variables_expr = " || ".join(f"({expr})" for expr in variables or ())
    rules: list[Rule] = []
    for ref in refs if refs is not None else (None,):
        events, ref_globs, ref_expr = _ref_rule_parts(ref) if ref is not None else (None, None, "")
        parts = [part for part in (ref_expr, variables_expr) if part]
        if_expr = " && ".join(f"({part})" for part in parts) if len(parts) > 1 else "".join(parts)
        rules.append(
            Rule(
                if_expr=if_expr or None,
                events=events,
                refs=ref_globs,
                changes=changes,
                when=when,
                start_in_s=start_in_s if when is When.DELAYED else None,
                mark=mark,
            )
        )
    return tuple(rules)


def translate_only_except(
    only: object,
    except_: object,
    marks: tuple[Mark, Mark],
    job_when: When,
    job_start_in_s: float | None,
    findings: Findings,
) -> tuple[Rule, ...]:
    """`except:` as `when: never` rules first, then `only:` (default branches and tags)."""
    rules: list[Rule] = []
    if except_ is not None:
        rules.extend(_policy_rules(except_, marks[1], "except", When.NEVER, None, findings) or ())
    if only is None:
        rules.append(
            Rule(
                events=DEFAULT_ONLY_EVENTS, when=job_when, start_in_s=job_start_in_s, mark=marks[0]
            )
        )
    else:
        rules.extend(
            _policy_rules(only, marks[0], "only", job_when, job_start_in_s, findings) or ()
        )
    return tuple(rules)
