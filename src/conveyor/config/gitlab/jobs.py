"""One GitLab job mapping (extends, references and defaults already applied) → model.Job.

Owns: the per-job keywords — stage, scripts (before_script + script in one shell, as a
runner does; after_script in its own shell with GitLab's 5 minute limit), variables,
when/start_in, allow_failure (bool or exit_codes), retry (int or max/when/exit_codes),
timeout, artifacts (with `reports:dotenv`), cache (cache.py), interruptible, environment,
resource_group, tags (as written: `$VARS` are expanded per attempt by the engine), needs and
dependencies as written, and the keywords recorded as unsupported (reported once each).
Must not: expand `parallel` or resolve needs across jobs (parallel.py does), read files.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.config.gitlab.durations import parse_duration
from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.keywords import (
    ARTIFACT_KEYS,
    JOB_KEYS,
    NEED_KEYS,
    RETRY_WHEN,
    RETRY_WHEN_OTHER,
    UNSUPPORTED_ARTIFACT_KEYS,
    UNSUPPORTED_JOB_KEYS,
)
from conveyor.config.gitlab.needs import parse_needs
from conveyor.config.gitlab.rules import (
    parse_when,
    translate_only_except,
    translate_rules,
)
from conveyor.config.gitlab.variables import string_map
from conveyor.config.yamlload import MarkedDict, type_name
from conveyor.model import Artifacts, ArtifactWhen, Cache, Job, Mark, Retry, Rule, Step, When
from conveyor.suggest import did_you_mean

__all__ = ["AFTER_SCRIPT_TIMEOUT_S", "JobDraft", "translate_job"]

AFTER_SCRIPT_TIMEOUT_S = 300.0  # GitLab runs after_script with its own 5 minute limit
_MAX_SCRIPT_DEPTH = 10
_MAX_TAGS = 49  # GitLab: "must be less than the limit of 50 tags"


@dataclass(frozen=True, slots=True)
class JobDraft:
    """A translated job before `parallel` expansion; `needs` still name jobs as written."""

    job: Job
    parallel: object
    parallel_mark: Mark


def _script(raw: object, mark: Mark, where: str, findings: Findings) -> list[str] | None:
    """A script as its lines: a string, or a list of strings nested up to 10 levels."""

    def flatten(value: object, depth: int) -> list[str] | None:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and depth < _MAX_SCRIPT_DEPTH:
            lines: list[str] = []
            for item in value:
                sub = flatten(item, depth + 1)
                if sub is None:
                    return None
                lines.extend(sub)
            return lines
        return None

    lines = flatten(raw, 0)
    if lines is None:
        findings.error(
            mark,
            f"{where} must be a string or a list of strings (nested up to 10 levels), got "
            f"{type_name(raw)} (quote values such as true or 1)",
        )
    return lines


def _bool(body: MarkedDict, key: str, where: str, findings: Findings) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    findings.error(
        body.value_mark(key), f"{where}: {key} must be true or false, got {type_name(value)}"
    )
    return None


def _exit_codes(raw: object, mark: Mark, where: str, findings: Findings) -> frozenset[int]:
    values: list[object] = list(raw) if isinstance(raw, list) else [raw]
    codes = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(codes) == len(values):
        return frozenset(codes)
    findings.error(mark, f"{where}: exit_codes must be an integer or a list of integers")
    return frozenset()


def _allow_failure(
    body: MarkedDict, when: When, where: str, findings: Findings
) -> tuple[bool, frozenset[int]]:
    raw = body.get("allow_failure")
    if raw is None:
        return when is When.MANUAL, frozenset()  # manual jobs may fail unless told otherwise
    if isinstance(raw, bool):
        return raw, frozenset()
    if isinstance(raw, MarkedDict) and set(raw) == {"exit_codes"}:
        codes = _exit_codes(
            raw["exit_codes"], raw.value_mark("exit_codes"), f"{where}: allow_failure", findings
        )
        return True, codes
    findings.error(
        body.value_mark("allow_failure"),
        f"{where}: allow_failure must be true, false or {{exit_codes: [...]}}",
    )
    return False, frozenset()


def _retry(raw: object, mark: Mark, where: str, findings: Findings) -> Retry:
    if raw is None:
        return Retry()
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw <= 2:
            return Retry(max=raw)
        findings.error(mark, f"{where}: retry must be 0, 1 or 2 (GitLab's limit), got {raw}")
        return Retry()
    if not isinstance(raw, MarkedDict):
        findings.error(mark, f"{where}: retry must be an integer or a mapping with max")
        return Retry()
    for key in raw:
        if key not in ("max", "when", "exit_codes"):
            findings.error(
                raw.key_mark(key),
                f"{where}: unknown retry key {key}"
                f"{did_you_mean(key, ('max', 'when', 'exit_codes'))}",
            )
    retry_max = raw.get("max", 0)
    if not (isinstance(retry_max, int) and not isinstance(retry_max, bool) and 0 <= retry_max <= 2):
        findings.error(raw.value_mark("max"), f"{where}: retry:max must be 0, 1 or 2")
        retry_max = 0
    kinds: set[str] = set()
    raw_when = raw.get("when", [])
    names = [raw_when] if isinstance(raw_when, str) else raw_when
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        findings.error(raw.value_mark("when"), f"{where}: retry:when must be a list of names")
        names = []
    for name in names:
        if name in RETRY_WHEN:
            kinds.update(RETRY_WHEN[name])
        elif name in RETRY_WHEN_OTHER:
            kinds.add(str(name))  # a failure a local host never has: never matches
        else:
            hint = did_you_mean(name, {*RETRY_WHEN, *RETRY_WHEN_OTHER})
            findings.error(raw.value_mark("when"), f"{where}: unknown retry:when {name!r}{hint}")
    codes = frozenset[int]()
    if "exit_codes" in raw:
        codes = _exit_codes(raw["exit_codes"], raw.value_mark("exit_codes"), where, findings)
    return Retry(max=retry_max, when=frozenset(kinds), exit_codes=codes)


def _artifacts(raw: object, mark: Mark, where: str, findings: Findings) -> Artifacts | None:
    if raw is None:
        return None
    if not isinstance(raw, MarkedDict):
        findings.error(mark, f"{where}: artifacts must be a mapping, got {type_name(raw)}")
        return None
    dotenv: tuple[str, ...] = ()
    for key in raw:
        if key not in ARTIFACT_KEYS:
            findings.error(
                raw.key_mark(key),
                f"{where}: unknown artifacts key {key}{did_you_mean(key, ARTIFACT_KEYS)}",
            )
        elif key == "reports":
            dotenv = _reports_dotenv(raw["reports"], raw.value_mark("reports"), where, findings)
        elif key in UNSUPPORTED_ARTIFACT_KEYS:
            findings.warn_once(
                f"artifacts:{key}",
                raw.key_mark(key),
                f"artifacts:{key} is not collected by conveyor (ignored)",
            )
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("paths", "exclude"):
        value = raw.get(key, [])
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            lists[key] = tuple(value)
        else:
            findings.error(raw.value_mark(key), f"{where}: artifacts:{key} must be a list of paths")
            lists[key] = ()
    when = raw.get("when", "on_success")
    if when not in ("on_success", "on_failure", "always"):
        findings.error(
            raw.value_mark("when"),
            f"{where}: artifacts:when must be on_success, on_failure or always",
        )
        when = "on_success"
    if not lists["paths"] and not dotenv:
        return None
    return Artifacts(
        paths=lists["paths"], exclude=lists["exclude"], when=ArtifactWhen(when), dotenv=dotenv
    )


def _reports_dotenv(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[str, ...]:
    """The files of `artifacts:reports:dotenv`; other report kinds are warned about once."""
    if not isinstance(raw, MarkedDict):
        findings.error(mark, f"{where}: artifacts:reports must be a mapping of report kinds")
        return ()
    for kind in raw:
        if kind != "dotenv":
            findings.warn_once(
                f"artifacts:reports:{kind}",
                raw.key_mark(kind),
                f"artifacts:reports:{kind} is not collected by conveyor (ignored)",
            )
    value = raw.get("dotenv")
    if value is None:
        return ()
    files = [value] if isinstance(value, str) else value
    if isinstance(files, list) and files and all(isinstance(f, str) and f for f in files):
        return tuple(files)
    findings.error(
        raw.value_mark("dotenv"),
        f"{where}: artifacts:reports:dotenv must be a file path or a list of file paths",
    )
    return ()


def _tags(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[str, ...]:
    """Runner tags: a list of non-empty strings (nested lists from `!reference` flattened),
    duplicates dropped."""
    if raw is None:
        return ()
    items: list[object] = [raw]
    while any(isinstance(item, list) for item in items):
        items = [part for item in items for part in (item if isinstance(item, list) else [item])]
    if not isinstance(raw, list) or not all(isinstance(tag, str) and tag.strip() for tag in items):
        findings.error(mark, f"{where}: tags must be a list of non-empty strings")
        return ()
    if len(items) > _MAX_TAGS:
        findings.error(
            mark, f"{where}: tags has {len(items)} tags, more than {_MAX_TAGS} (GitLab's limit)"
        )
    return tuple(dict.fromkeys(str(tag) for tag in items))


def _names(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return tuple(raw)
    findings.error(mark, f"{where}: dependencies must be a list of job names")
    return None


def _text(body: MarkedDict, key: str, where: str, findings: Findings) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    if (
        key == "environment"
        and isinstance(value, MarkedDict)
        and isinstance(value.get("name"), str)
    ):
        return str(value["name"])
    findings.error(body.value_mark(key), f"{where}: {key} must be a string, got {type_name(value)}")
    return None


def _record_unsupported(body: MarkedDict, findings: Findings) -> dict[str, object]:
    recorded: dict[str, object] = {}
    for key in body:
        if key in UNSUPPORTED_JOB_KEYS:
            recorded[key] = body[key]
            findings.warn_once(
                key,
                body.key_mark(key),
                f"{key} is not supported by a local run: accepted and recorded, not acted upon",
            )
    return recorded


def _caches(body: MarkedDict, where: str, findings: Findings) -> tuple[Cache, ...]:
    if body.get("cache") is None:
        return ()
    # cache.py only for a job with a cache: most have none, and a short run is mostly imports.
    from conveyor.config.gitlab.cache import translate_cache

    return translate_cache(body["cache"], body.value_mark("cache"), where, findings)


def _check_keys(name: str, body: MarkedDict, findings: Findings) -> None:
    for key in body:
        if key not in JOB_KEYS:
            findings.error(
                body.key_mark(key),
                f'job "{name}": unknown keyword {key}{did_you_mean(key, JOB_KEYS)}',
            )
    if "rules" in body and ("only" in body or "except" in body):
        findings.error(
            body.key_mark("rules"),
            f'job "{name}": rules cannot be used with only/except (use rules alone)',
        )


def _job_rules(
    body: MarkedDict, where: str, when: When, start_in_s: float | None, findings: Findings
) -> tuple[Rule, ...]:
    if "rules" in body:
        return translate_rules(
            body["rules"], body.value_mark("rules"), where, when, start_in_s, findings
        )
    return translate_only_except(
        body.get("only"),
        body.get("except"),
        (body.value_mark("only") if "only" in body else body.mark, body.value_mark("except")),
        when,
        start_in_s,
        findings,
    )


def translate_job(
    name: str, body: MarkedDict, stages: tuple[str, ...], findings: Findings
) -> JobDraft:
    """Translate one visible job; problems go to `findings` (the draft is still returned)."""
    where = f'job "{name}"'
    _check_keys(name, body, findings)
    stage = body.get("stage", body.get("type", "test"))
    if not isinstance(stage, str) or stage not in stages:
        shown = stage if isinstance(stage, str) else type_name(stage)
        findings.error(
            body.value_mark("stage" if "stage" in body else "type"),
            f'{where}: stage "{shown}" is not in stages ({", ".join(stages)})'
            f"{did_you_mean(shown, stages)}",
        )
        stage = "test"
    when = When.ON_SUCCESS
    if "when" in body:
        when = parse_when(body["when"], body.value_mark("when"), where, findings) or when
        if when is When.NEVER:
            findings.error(
                body.value_mark("when"),
                f"{where}: when: never can only be used in rules or workflow:rules "
                "(write rules: [{when: never}])",
            )
    start_in_s = None
    if "start_in" in body:
        start_in_s = parse_duration(body["start_in"])
        if start_in_s is None:
            findings.error(body.value_mark("start_in"), f"{where}: start_in must be a duration")
    if when is When.DELAYED and start_in_s is None and "rules" not in body:
        findings.error(body.key_mark("when"), f"{where}: when: delayed needs start_in")
    steps: tuple[Step, ...] = ()
    lines: list[str] = []
    for key in ("before_script", "script"):
        if key in body:
            lines.extend(
                _script(body[key], body.value_mark(key), f"{where}: {key}", findings) or []
            )
    if "script" in body:
        steps = (Step(name="script", run="\n".join(lines)),)
    elif "trigger" not in body and "run" not in body and name not in findings.unresolved:
        # (a job whose extends failed is reported there: its script may be the parent's)
        findings.error(body.mark, f"{where}: a job needs a script (or trigger) keyword")
    after: tuple[Step, ...] = ()
    if "after_script" in body:
        after_lines = _script(
            body["after_script"],
            body.value_mark("after_script"),
            f"{where}: after_script",
            findings,
        )
        if after_lines:
            after = (Step("after_script", "\n".join(after_lines), AFTER_SCRIPT_TIMEOUT_S),)
    allow_failure, allow_codes = _allow_failure(body, when, where, findings)
    timeout_s = None
    if "timeout" in body:
        timeout_s = parse_duration(body["timeout"])
        if timeout_s is None:
            findings.error(
                body.value_mark("timeout"),
                f"{where}: timeout must be a duration such as 1h 30m or 90 minutes",
            )
    job = Job(
        name=name,
        stage=stage,
        steps=steps,
        mark=body.mark,
        needs=parse_needs(body.get("needs"), body.value_mark("needs"), where, NEED_KEYS, findings),
        dependencies=_names(
            body.get("dependencies"), body.value_mark("dependencies"), where, findings
        ),
        env=string_map(body.get("variables"), body.value_mark("variables"), where, findings),
        timeout_s=timeout_s,
        retry=_retry(body.get("retry"), body.value_mark("retry"), where, findings),
        allow_failure=allow_failure,
        allow_failure_exit_codes=allow_codes,
        rules=_job_rules(body, where, when, start_in_s, findings),
        when=when,
        start_in_s=start_in_s,
        after_steps=after,
        artifacts=_artifacts(body.get("artifacts"), body.value_mark("artifacts"), where, findings),
        interruptible=_bool(body, "interruptible", where, findings) or False,
        resource_group=_text(body, "resource_group", where, findings),
        environment=_text(body, "environment", where, findings),
        base_name=name,
        tags=_tags(body.get("tags"), body.value_mark("tags"), where, findings),
        unsupported=_record_unsupported(body, findings),
        caches=_caches(body, where, findings),
    )
    return JobDraft(job, body.get("parallel"), body.value_mark("parallel"))
