"""`.gitlab-ci.yml` text (and its includes) → model.Pipeline (flavor "gitlab").

Owns: the order GitLab applies its steps in — includes (with their rules), extends,
`!reference`, defaults (as `inherit:` allows, inherit.py), then jobs — the top-level
keywords (`stages` with `.pre`/`.post`, `variables`, `default`, `workflow`, deprecated
globals), and telling jobs from keywords (hidden `.jobs` skipped, a misspelt keyword
reported with did-you-mean). Every problem is collected and raised as one ConfigError;
unsupported keywords become `Pipeline.warnings` lines.
Must not: read files or URLs (a Reader and a RemoteFetcher come from the I/O edge) or
evaluate job rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import TYPE_CHECKING

from conveyor.config.gitlab.auto_cancel import workflow_auto_cancel
from conveyor.config.gitlab.document import Reader, load_document
from conveyor.config.gitlab.extends import resolve_extends, resolve_references
from conveyor.config.gitlab.findings import Findings
from conveyor.config.gitlab.inherit import apply_inherit
from conveyor.config.gitlab.jobs import JobDraft, translate_job
from conveyor.config.gitlab.keywords import (
    DEFAULT_KEYS,
    DEFAULT_STAGES,
    JOB_KEYS,
    TOP_LEVEL_KEYS,
)
from conveyor.config.gitlab.parallel import expand_parallel, resolve_job_links
from conveyor.config.gitlab.rules import translate_workflow
from conveyor.config.gitlab.variables import string_map
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.errors import ConfigError
from conveyor.model import Mark, Pipeline
from conveyor.suggest import closest_name, did_you_mean

if TYPE_CHECKING:
    from conveyor.config.gitlab.include_rules import IncludeConditions
    from conveyor.config.remote import GitLabFiles, RemoteFetcher

__all__ = ["parse_gitlab"]

# Deprecated top-level spellings of `default:` keywords.
_GLOBAL_DEFAULTS = ("image", "services", "cache", "before_script", "after_script")
_UNSUPPORTED_GLOBALS = ("image", "services")


def _expand_includes(
    doc: MarkedDict,
    file: str,
    read: Reader | None,
    fetch: RemoteFetcher | None,
    conditions: IncludeConditions | Callable[[], IncludeConditions] | None,
    findings: Findings,
    gitlab: GitLabFiles | None = None,
) -> MarkedDict | None:
    """`doc` with its `include:` files merged in. The include machinery (includes.py,
    include_entries.py, include_rules.py, hashlib) is imported only for a file that has an
    `include:`, and `conditions` made only then: most files have none, and a short run's
    time is mostly imports."""
    if "include" not in doc:
        return doc
    from conveyor.config.gitlab.includes import IncludeSources, expand_includes

    if callable(conditions):
        conditions = conditions()
    return expand_includes(doc, file, IncludeSources(read, fetch, conditions, gitlab), findings)


def _stages(config: MarkedDict, findings: Findings) -> tuple[str, ...]:
    key = "stages" if "stages" in config else "types"
    raw = config.get(key)
    written: tuple[str, ...] = DEFAULT_STAGES
    if raw is not None:
        if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            written = tuple(raw)
        else:
            findings.error(config.value_mark(key), f"{key} must be a list of stage names")
    body = tuple(stage for stage in written if stage not in (".pre", ".post"))
    return (".pre", *dict.fromkeys(body), ".post")


def _defaults(config: MarkedDict, findings: Findings) -> MarkedDict:
    """The `default:` keywords, with deprecated globals under them."""
    defaults = MarkedDict(config.mark)
    for key in _GLOBAL_DEFAULTS:
        if key in config:
            defaults[key] = config[key]
            defaults.key_marks[key] = config.key_mark(key)
            defaults.value_marks[key] = config.value_mark(key)
    raw = config.get("default")
    if raw is None:
        return defaults
    if not isinstance(raw, MarkedDict):
        findings.error(config.value_mark("default"), "default must be a mapping")
        return defaults
    for key, value in raw.items():
        if key not in DEFAULT_KEYS:
            findings.error(
                raw.key_mark(key),
                f"default: unknown keyword {key}{did_you_mean(key, DEFAULT_KEYS)}",
            )
            continue
        defaults[key] = value
        defaults.key_marks[key] = raw.key_mark(key)
        defaults.value_marks[key] = raw.value_mark(key)
    return defaults


def _job_entries(config: MarkedDict, findings: Findings) -> list[tuple[str, MarkedDict]]:
    entries: list[tuple[str, MarkedDict]] = []
    for key, value in config.items():
        if key in TOP_LEVEL_KEYS or key.startswith("."):
            continue
        if isinstance(value, MarkedDict):
            entries.append((key, value))
            continue
        close = did_you_mean(key, TOP_LEVEL_KEYS)
        # `stage:` at the top is a typo of `stages`; `script:` a job keyword out of place.
        if key in JOB_KEYS and closest_name(key, TOP_LEVEL_KEYS, cutoff=0.8) is None:
            findings.error(
                config.key_mark(key),
                f"{key} is a job keyword: put it under a job (or under default:)",
            )
        elif close:
            findings.error(config.key_mark(key), f"unknown keyword {key}{close}")
        else:
            findings.error(
                config.key_mark(key),
                f'job "{key}" must be a mapping with a script, got {type_name(value)}',
            )
    return entries


def _needs_matrix(name: str, body: MarkedDict) -> dict[tuple[str, int], object]:
    """`needs: [{job, parallel: {matrix: [...]}}]` selections, keyed by need position."""
    selections: dict[tuple[str, int], object] = {}
    raw = body.get("needs")
    if not isinstance(raw, MarkedList):
        return selections
    index = 0
    for item in raw:
        if isinstance(item, MarkedDict) and ("pipeline" in item or "project" in item):
            continue
        if isinstance(item, MarkedDict) and isinstance(item.get("parallel"), dict):
            selections[(name, index)] = item["parallel"].get("matrix")
        index += 1
    return selections


def parse_gitlab(
    text: str,
    file: str,
    read: Reader | None = None,
    *,
    fetch: RemoteFetcher | None = None,
    conditions: IncludeConditions | Callable[[], IncludeConditions] | None = None,
    strict: bool = False,
    gitlab: GitLabFiles | None = None,
    inputs: Mapping[str, str] | None = None,
) -> Pipeline:
    """Translate a `.gitlab-ci.yml`; `inputs` are the values of its own `spec:inputs` given
    when the pipeline is created (`--input NAME=VALUE`, text; None: their defaults);
    `read` resolves `include: local` patterns (None: a
    file with includes reports them as missing), `fetch` reads `include: remote` URLs (None:
    they are unavailable), `conditions` (or a function making them, called only for a
    file with `include:`) decide `include:rules` (None: every conditional include is
    loaded, with a warning). An include that cannot be read (template, project, component,
    remote offline) is a warning and the jobs needing it are left out (unavailable.py);
    `strict` makes both errors. `gitlab` reads project, template and component includes
    from a GitLab instance (None: they are unavailable). Raises ConfigError with every problem."""
    findings = Findings(strict=strict)
    document = load_document(text, file, findings, pipeline_inputs=inputs)
    if document is not None:
        document = _expand_includes(document, file, read, fetch, conditions, findings, gitlab)
    if document is None:  # load_document or the includes recorded why
        raise ConfigError(findings.shown_problems())
    if findings.unavailable:  # an include could not be read: leave out what needs it
        from conveyor.config.gitlab.unavailable import leave_out_unresolvable

        document = leave_out_unresolvable(document, findings)
    config = resolve_references(resolve_extends(document, findings), findings)
    if findings.unavailable:
        from conveyor.config.gitlab.unavailable import leave_out_incomplete

        config = leave_out_incomplete(config, findings)
    stages = _stages(config, findings)
    env = string_map(config.get("variables"), config.value_mark("variables"), "variables", findings)
    workflow, auto_cancel = None, None
    if "workflow" in config:
        workflow = translate_workflow(config["workflow"], config.value_mark("workflow"), findings)
        auto_cancel = workflow_auto_cancel(config["workflow"], findings)
    for key in _UNSUPPORTED_GLOBALS:
        if key in config:
            findings.warn_once(
                key,
                config.key_mark(key),
                f"{key} is not supported by a local run: accepted and recorded, not acted upon",
            )
    defaults = _defaults(config, findings)
    drafts: list[JobDraft] = []
    needs_matrix: dict[tuple[str, int], object] = {}
    workflow_names = [key for rule in workflow or () for key in rule.variables if key not in env]
    global_names = [*env, *workflow_names]
    for name, body in _job_entries(config, findings):
        job_body, inherit_variables = apply_inherit(name, body, defaults, global_names, findings)
        draft = translate_job(name, job_body, stages, findings)
        if inherit_variables is not True:
            draft = replace(draft, job=replace(draft.job, inherit_variables=inherit_variables))
        drafts.append(draft)
        needs_matrix.update(_needs_matrix(name, job_body))
    if not drafts and findings.unavailable:
        findings.left_out(Mark(file, 1, 1), "no job is left: every job needs an unread include")
    elif not drafts:
        findings.error(
            Mark(file, 1, 1), "the pipeline has no visible job (add a job with a script)"
        )
    jobs = resolve_job_links(expand_parallel(drafts, findings), stages, needs_matrix, findings)
    findings.raise_if_any()
    name = _workflow_name(config) or PurePath(file).name  # as native: the file's name
    return Pipeline(
        name=name,
        file=file,
        jobs=tuple(jobs),
        flavor="gitlab",
        stages=stages,
        env=env,
        workflow=workflow,
        auto_cancel=auto_cancel,
        isolate_jobs=True,
        warnings=findings.warnings,
    )


def _workflow_name(config: MarkedDict) -> str | None:
    workflow = config.get("workflow")
    if isinstance(workflow, MarkedDict) and isinstance(workflow.get("name"), str):
        return str(workflow["name"])
    return None
