"""Readers for the values of the native format (`.conveyor.yml`) that need more than a type.

Owns: durations (`90s`, `10m`, `1h30m`, plain seconds), retry policies, steps, artifacts,
events, variable names, runner tags and a job's `when:` block (turned into one model.Rule).
Must not: read files, or decide anything about other jobs (native.py does that).
"""

from __future__ import annotations

import re

from conveyor.config.expr import ExprError, validate_expression
from conveyor.config.problems import Section
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import Artifacts, ArtifactWhen, EventKind, Mark, Retry, Rule, Step, When
from conveyor.suggest import did_you_mean

__all__ = [
    "ALL_EVENTS",
    "parse_duration",
    "read_artifacts",
    "read_duration",
    "read_events",
    "read_names",
    "read_on",
    "read_retry",
    "read_rule",
    "read_steps",
    "read_tags",
    "step_name",
]

ALL_EVENTS = frozenset(EventKind)
_CHANGE_EVENTS = frozenset(kind for kind in EventKind if kind.is_change_request)
STEP_KEYS = ("name", "run", "timeout", "env", "workdir")
WHEN_KEYS = ("on", "ref", "changes", "exists", "if", "status")
RETRY_KEYS = ("max", "when", "delay")
ARTIFACT_KEYS = ("paths", "exclude", "when")
MAX_RETRIES = 10
MAX_TAGS = 49  # GitLab: "must be less than the limit of 50 tags"

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_DURATION_HINT = 'a duration like "90s", "10m" or "1h30m"'
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STATUS = {"success": When.ON_SUCCESS, "failure": When.ON_FAILURE, "always": When.ALWAYS}


def parse_duration(text: str) -> float | None:
    """Seconds in `text` ("90s", "10m", "1h30m", "1h 30m", "45"), or None if it is not one."""
    compact = text.replace(" ", "")
    if compact.isascii() and compact.replace(".", "", 1).isdigit():
        return float(compact)
    match = _DURATION.fullmatch(compact)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(group) if group else 0.0 for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def read_duration(section: Section, key: str, *, allow_zero: bool = False) -> float | None:
    if not section.has(key):
        return None
    value = section.get(key)
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is None:
            section.report(key, f'"{value}" is not {_DURATION_HINT}')
            return None
    else:
        section.wrong_type(key, _DURATION_HINT)
        return None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        section.report(key, f"must be more than zero, got {value}")
        return None
    return seconds


def read_on(
    section: Section, key: str
) -> tuple[frozenset[EventKind] | None, dict[EventKind, tuple[str, ...]]]:
    """The top-level `on`: a list of events, or a mapping of event -> null or
    `{branches: [globs]}` (the branches a push must be to, a pull request must target)."""
    if not isinstance(section.get(key), MarkedDict):
        return read_events(section, key), {}
    table = section.section(key)
    if table is None:  # pragma: no cover - a mapping was checked just above
        return None, {}
    names = [str(kind) for kind in EventKind]
    events: set[EventKind] = set()
    branches: dict[EventKind, tuple[str, ...]] = {}
    for name in table.data:
        if name not in names:
            table.problems.add(
                table.key_mark(name),
                f'{table.path(name)}: unknown event "{name}"{did_you_mean(name, names)} '
                f"(use {', '.join(names)})",
            )
            continue
        kind = EventKind(name)
        kinds = _CHANGE_EVENTS if kind.is_change_request else frozenset((kind,))
        events.update(kinds)
        if table.get(name) is None:
            continue
        filters = table.section(name)
        if filters is None:
            continue
        filters.check_keys(("branches",))
        globs = filters.text_list("branches")
        if globs is not None:
            if not globs:
                filters.report("branches", "lists no branches (remove it to allow every branch)")
            branches.update(dict.fromkeys(kinds, tuple(glob for glob, _ in globs)))
    if not events:
        section.report(key, "lists no events (remove it to allow every event)")
    return frozenset(events), branches


def read_events(section: Section, key: str) -> frozenset[EventKind] | None:
    items = section.text_list(key)
    if items is None:
        return None
    events: set[EventKind] = set()
    names = [str(kind) for kind in EventKind]
    if not items:
        section.report(key, "lists no events (remove it to allow every event)")
    for name, mark in items:
        if name in names:
            kind = EventKind(name)
            # One condition for pull (GitHub) and merge (GitLab) requests, either name.
            events.update(_CHANGE_EVENTS if kind.is_change_request else (kind,))
        else:
            section.problems.add(
                mark,
                f'{section.path(key)}: unknown event "{name}"{did_you_mean(name, names)} '
                f"(use {', '.join(names)})",
            )
    return frozenset(events)


def read_names(section: Section, key: str) -> tuple[str, ...]:
    """Environment variable names (secrets)."""
    names: list[str] = []
    for name, mark in section.text_list(key) or ():
        if _VAR_NAME.fullmatch(name):
            names.append(name)
        else:
            section.problems.add(
                mark, f'{section.path(key)}: "{name}" is not a variable name (use A-Z, 0-9, _)'
            )
    return tuple(dict.fromkeys(names))


def read_tags(section: Section, key: str) -> tuple[str, ...] | None:
    """Runner tags: a list of non-empty strings (duplicates dropped); None when absent."""
    items = section.text_list(key, allow_single=False)
    if items is None:
        return None
    tags: list[str] = []
    for index, (tag, mark) in enumerate(items):
        if tag.strip():
            tags.append(tag)
        else:
            section.problems.add(
                mark, f"{section.path(key)}[{index}]: empty tag (name a tag or remove the item)"
            )
    if len(items) > MAX_TAGS:
        section.report(key, f"has {len(items)} tags, more than {MAX_TAGS} (GitLab's limit)")
    return tuple(dict.fromkeys(tags))


def read_retry(section: Section, key: str) -> Retry | None:
    if not section.has(key):
        return None
    value = section.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        count = section.integer(key, maximum=MAX_RETRIES)
        return None if count is None else Retry(max=count)
    if not isinstance(value, MarkedDict):
        section.wrong_type(key, "an integer or a mapping {max, when, delay}")
        return None
    inner = Section(value, section.path(key), section.problems)
    inner.check_keys(RETRY_KEYS)
    if not inner.has("max"):
        section.problems.add(inner.mark, f"{inner.label}: missing key max (how many retries)")
    count = inner.integer("max", maximum=MAX_RETRIES) or 0
    reasons: set[str] = set()
    codes: set[int] = set()
    when = inner.get("when")
    items = when if isinstance(when, MarkedList) else [when] if inner.has("when") else []
    for index, item in enumerate(items):
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 255:
            codes.add(item)
        elif item in ("failure", "timeout", "runner_system_failure", "runner_interrupted"):
            reasons.add(str(item))  # the runner words: a lost fleet worker (status.py)
        else:
            mark = when.item_mark(index) if isinstance(when, MarkedList) else inner.mark
            section.problems.add(
                mark,
                f"{inner.path('when')}: expected failure, timeout, runner_system_failure, "
                f"runner_interrupted or an exit code 0-255, got {item!r}",
            )
    delay = read_duration(inner, "delay", allow_zero=True) or 0.0
    return Retry(max=count, when=frozenset(reasons), exit_codes=frozenset(codes), delay_s=delay)


def step_name(run: str) -> str:
    """A step's default name: the first non-empty line of its command, shortened."""
    line = next((part.strip() for part in run.splitlines() if part.strip()), "")
    return line if len(line) <= 60 else line[:59] + "…"


def _read_step(item: object, mark: Mark, label: str, section: Section) -> Step | None:
    if isinstance(item, str):
        if not item.strip():
            section.problems.add(mark, f"{label}: empty command")
            return None
        return Step(name=step_name(item), run=item)
    if not isinstance(item, MarkedDict):
        section.problems.add(
            mark, f"{label}: expected a command or a mapping {{name, run}}, got {type_name(item)}"
        )
        return None
    step = Section(item, label, section.problems)
    step.check_keys(STEP_KEYS)
    run = step.text("run")
    if run is None:
        if not step.has("run"):
            section.problems.add(mark, f"{label}: missing key run (the command to execute)")
        return None
    return Step(
        name=step.text("name") or step_name(run),
        run=run,
        timeout_s=read_duration(step, "timeout"),
        env=step.text_mapping("env") or {},
        workdir=step.text("workdir"),
    )


def read_steps(job: Section) -> tuple[Step, ...]:
    """`steps:` (list) or `run:` (one step); reports an empty job."""
    if job.has("steps") and job.has("run"):
        job.problems.add(job.key_mark("run"), f"{job.label}: use either steps or run, not both")
    steps: list[Step] = []
    if job.has("run"):
        step = _read_step(job.get("run"), job.value_mark("run"), job.path("run"), job)
        steps.extend([step] if step else [])
    elif job.has("steps"):
        value = job.get("steps")
        if not isinstance(value, MarkedList):
            job.wrong_type("steps", "a list of commands")
            return ()
        for index, item in enumerate(value):
            label = f"{job.path('steps')}[{index}]"
            step = _read_step(item, value.item_mark(index), label, job)
            steps.extend([step] if step else [])
        if not value:
            job.report("steps", "has no steps (add at least one command)")
    else:
        job.problems.add(job.mark, f"{job.label}: has no steps (add steps: or run:)")
    return tuple(steps)


def read_artifacts(job: Section) -> Artifacts | None:
    if not job.has("artifacts"):
        return None
    value = job.get("artifacts")
    if isinstance(value, MarkedList | str):
        listed = job.text_list("artifacts") or []
        return Artifacts(paths=tuple(path for path, _ in listed))
    inner = job.section("artifacts")
    if inner is None:
        return None
    inner.check_keys(ARTIFACT_KEYS)
    paths = inner.text_list("paths")
    if paths is None and not inner.has("paths"):
        job.problems.add(inner.mark, f"{inner.label}: missing key paths")
    when = ArtifactWhen.ON_SUCCESS
    text = inner.text("when")
    if text is not None:
        if text in {str(kind) for kind in ArtifactWhen}:
            when = ArtifactWhen(text)
        else:
            inner.report("when", f'unknown value "{text}" (use on_success, on_failure, always)')
    return Artifacts(
        paths=tuple(path for path, _ in paths or ()),
        exclude=tuple(path for path, _ in inner.text_list("exclude") or ()),
        when=when,
    )


def read_rule(job: Section, *, is_manual: bool) -> Rule | None:
    """The job's `when:` block as one Rule (all conditions must hold)."""
    when = job.section("when")
    if when is None:
        return None
    when.check_keys(WHEN_KEYS)
    if_expr = when.text("if")
    if if_expr is not None:
        try:
            validate_expression(if_expr)
        except ExprError as exc:
            when.report("if", f"{exc.message} at column {exc.col} of the expression")
    status = When.ON_SUCCESS
    text = when.text("status")
    if text is not None:
        if text in _STATUS:
            status = _STATUS[text]
        else:
            hint = did_you_mean(text, _STATUS)
            when.report("status", f'unknown status "{text}"{hint} (use success, failure, always)')
        if is_manual and status is not When.ON_SUCCESS:
            when.report("status", f"a manual job runs when played, not on {text} (drop one)")
    refs = when.text_list("ref")
    changes = when.text_list("changes")
    exists = when.text_list("exists")
    return Rule(
        if_expr=if_expr,
        events=read_events(when, "on"),
        refs=None if refs is None else tuple(ref for ref, _ in refs),
        changes=None if changes is None else tuple(path for path, _ in changes),
        exists=None if exists is None else tuple(path for path, _ in exists),
        when=When.MANUAL if is_manual else status,
        mark=when.mark,
    )
