"""GitLab `cache:` (job, `default:` or the deprecated global one) → model.Cache entries.

Owns: the shapes GitLab accepts — one mapping or a list of up to 4; `key` as a string (may
hold `$VARS`) or `{files: [one or two paths], prefix}`; `paths`; `untracked`; `policy`
(`pull`, `push`, `pull-push`); `when` (`on_success`, `on_failure`, `always`);
`fallback_keys` (up to 5); `unprotect` accepted (a local host has no protected refs) — and
GitLab's key checks: a key cannot contain `/` (or `%2F`) nor be `.` or `..` (or `%2E`).
`cache: []` or `{}` turns a default cache off; nested lists (from aliases) are flattened,
`paths: null` is no paths, a `policy` holding `$VAR` is kept for the engine to expand.
Must not: compute keys or touch files (engine/cache.py does at run time).
"""

from __future__ import annotations

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, MarkedList, type_name
from conveyor.model import ArtifactWhen, Cache, Mark, cache_key_problem
from conveyor.suggest import did_you_mean

__all__ = ["CACHE_KEYS", "MAX_CACHES", "translate_cache"]

CACHE_KEYS = frozenset(
    {"key", "paths", "untracked", "unprotect", "when", "policy", "fallback_keys"}
)
MAX_CACHES = 4  # GitLab: "no more than 4 caches" per job
_MAX_FALLBACK_KEYS = 5
_MAX_KEY_FILES = 2
_POLICIES = ("pull", "push", "pull-push")
_WHENS = ("on_success", "on_failure", "always")


def _strings(raw: object) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    return None


def _key(raw: MarkedDict, where: str, findings: Findings) -> tuple[str, tuple[str, ...], str]:
    """(key, key_files, key_prefix) of one cache entry."""
    value = raw.get("key", "default")
    mark = raw.value_mark("key")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        key = str(value)
        problem = cache_key_problem(key)
        if problem is not None:
            findings.error(mark, f"{where}: cache:key {problem}")
        return key, (), ""
    if not isinstance(value, MarkedDict):
        findings.error(mark, f"{where}: cache:key must be a string or {{files: [...], prefix}}")
        return "default", (), ""
    for name in value:
        if name not in ("files", "prefix"):
            findings.error(
                value.key_mark(name),
                f"{where}: unknown cache:key key {name}{did_you_mean(name, ('files', 'prefix'))}",
            )
    files = _strings(value.get("files"))
    if files is None or not 1 <= len(files) <= _MAX_KEY_FILES:
        findings.error(
            value.value_mark("files") if "files" in value else value.mark,
            f"{where}: cache:key:files must list one or two files",
        )
        files = ()
    prefix = value.get("prefix", "")
    if not isinstance(prefix, str):
        findings.error(value.value_mark("prefix"), f"{where}: cache:key:prefix must be a string")
        prefix = ""
    problem = cache_key_problem(prefix) if prefix else None
    if problem is not None:
        findings.error(value.value_mark("prefix"), f"{where}: cache:key:prefix {problem}")
    return "", files, prefix


def _choice(
    raw: MarkedDict, key: str, choices: tuple[str, ...], where: str, findings: Findings
) -> str:
    value = raw.get(key, choices[-1] if key == "policy" else choices[0])
    if value in choices:
        return str(value)
    if key == "policy" and isinstance(value, str) and "$" in value:
        return value  # GitLab expands a variable here when the job runs (engine/cache.py)
    findings.error(
        raw.value_mark(key),
        f"{where}: cache:{key} must be one of {', '.join(choices)}, got {value!r}"
        f"{did_you_mean(str(value), choices)}",
    )
    return choices[-1] if key == "policy" else choices[0]


def _entry(raw: MarkedDict, where: str, findings: Findings) -> Cache:
    for name in raw:
        if name not in CACHE_KEYS:
            findings.error(
                raw.key_mark(name),
                f"{where}: unknown cache keyword {name}{did_you_mean(name, CACHE_KEYS)}",
            )
    key, key_files, key_prefix = _key(raw, where, findings)
    paths = _strings(raw.get("paths") or [])  # `paths: null` (GitLab accepts it): none
    if paths is None:
        findings.error(raw.value_mark("paths"), f"{where}: cache:paths must be a list of paths")
        paths = ()
    untracked = raw.get("untracked", False)
    if not isinstance(untracked, bool):
        findings.error(raw.value_mark("untracked"), f"{where}: cache:untracked must be a boolean")
        untracked = False
    fallback = _strings(raw.get("fallback_keys", []))
    if fallback is None or len(fallback) > _MAX_FALLBACK_KEYS:
        findings.error(
            raw.value_mark("fallback_keys"),
            f"{where}: cache:fallback_keys must be a list of at most 5 keys",
        )
        fallback = ()
    for fallback_key in fallback:
        problem = cache_key_problem(fallback_key)
        if problem is not None:
            findings.error(
                raw.value_mark("fallback_keys"), f"{where}: cache:fallback_keys {problem}"
            )
    return Cache(
        key=key,
        paths=paths,
        key_files=key_files,
        key_prefix=key_prefix,
        policy=_choice(raw, "policy", _POLICIES, where, findings),
        when=ArtifactWhen(_choice(raw, "when", _WHENS, where, findings)),
        untracked=untracked,
        fallback_keys=fallback,
    )


def _flat_items(raw: MarkedList, mark: Mark) -> list[tuple[object, Mark]]:
    """The entries of a cache list, nested lists flattened as GitLab does (a list built
    from YAML aliases, `cache: [*go_cache, *node_caches]`, nests)."""
    items: list[tuple[object, Mark]] = []
    for index, item in enumerate(raw):
        if isinstance(item, MarkedList):
            items.extend(_flat_items(item, raw.item_mark(index)))
        else:
            items.append((item, raw.item_mark(index)))
    return items


def translate_cache(raw: object, mark: Mark, where: str, findings: Findings) -> tuple[Cache, ...]:
    """The caches of one job (`raw` is its `cache:` value, None when it has none)."""
    if raw is None:
        return ()
    items: list[tuple[object, Mark]]
    items = _flat_items(raw, mark) if isinstance(raw, MarkedList) else [(raw, mark)]
    if len(items) > MAX_CACHES:
        findings.error(mark, f"{where}: cache has {len(items)} entries, GitLab allows {MAX_CACHES}")
    caches: list[Cache] = []
    for item, item_mark in items:
        if not isinstance(item, MarkedDict):
            findings.error(
                item_mark, f"{where}: cache must be a mapping with paths, got {type_name(item)}"
            )
        elif item:  # `cache: {}` is no cache
            caches.append(_entry(item, where, findings))
    return tuple(caches[:MAX_CACHES])
