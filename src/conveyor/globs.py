"""Path globs for `changes`, `exists` and artifact paths. Pure string matching, no I/O.

Owns: turning a glob into a regex and matching repository-relative, `/`-separated paths.
Must not: touch the file system (callers list files and pass them in).

Syntax (GitLab's fnmatch with FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB):
  `*` any run of characters within one path segment (dot files included)
  `**` any run of characters across segments; `**/` also matches no directory at all
  `?` one character other than `/`;  `[abc]`, `[a-z]`, `[!x]` / `[^x]` one character
  `{a,b}` either alternative (nesting allowed)
A leading `./` is ignored; a pattern ending in `/` matches everything below that folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["compile_glob", "filter_paths", "match_any", "match_path"]


def _normalize(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path


def _translate_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate `[...]` starting at `start`; return (regex, index after it)."""
    index = start + 1
    negate = index < len(pattern) and pattern[index] in "!^"
    if negate:
        index += 1
    body_start = index
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 1
    if index >= len(pattern):
        return re.escape("["), start + 1  # an unclosed bracket is a literal
    body = pattern[body_start:index].replace("\\", "\\\\")
    if body.startswith("^"):
        body = "\\" + body
    prefix = "[^/" if negate else "["
    return f"{prefix}{body}]", index + 1


def _translate(pattern: str, start: int, stop_at_brace: bool) -> tuple[str, int]:
    parts: list[str] = []
    index = start
    while index < len(pattern):
        char = pattern[index]
        if stop_at_brace and char in ",}":
            return "".join(parts), index
        if char == "*":
            if pattern.startswith("**", index):
                index += 2
                if pattern.startswith("/", index):
                    parts.append("(?:.*/)?")
                    index += 1
                else:
                    parts.append(".*")
                continue
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[":
            regex, index = _translate_class(pattern, index)
            parts.append(regex)
            continue
        elif char == "{":
            regex, index = _translate_braces(pattern, index)
            parts.append(regex)
            continue
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            parts.append(re.escape(pattern[index]))
        else:
            parts.append(re.escape(char))
        index += 1
    return "".join(parts), index


def _translate_braces(pattern: str, start: int) -> tuple[str, int]:
    alternatives: list[str] = []
    index = start + 1
    while index < len(pattern):
        regex, index = _translate(pattern, index, stop_at_brace=True)
        alternatives.append(regex)
        if index >= len(pattern):
            break
        if pattern[index] == "}":
            return "(?:" + "|".join(alternatives) + ")", index + 1
        index += 1  # a comma
    return re.escape("{"), start + 1  # an unclosed brace is a literal


@lru_cache(maxsize=2048)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The compiled regex for `pattern` (cached); it must match a whole path."""
    pattern = _normalize(pattern)
    suffix = ""
    if pattern.endswith("/"):
        pattern, suffix = pattern.rstrip("/"), "/.*"
    regex, _ = _translate(pattern, 0, stop_at_brace=False)
    return re.compile(f"(?s:{regex}{suffix})\\Z")


def match_path(pattern: str, path: str) -> bool:
    """True when the relative `path` matches `pattern`."""
    return compile_glob(pattern).match(_normalize(path)) is not None


def match_any(patterns: Iterable[str], paths: Iterable[str]) -> bool:
    """True when at least one path matches at least one pattern."""
    compiled = [compile_glob(pattern) for pattern in patterns]
    return any(regex.match(_normalize(path)) for path in paths for regex in compiled)


def filter_paths(patterns: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The paths that match any pattern, in their given order."""
    compiled = [compile_glob(pattern) for pattern in patterns]
    return [path for path in paths if any(r.match(_normalize(path)) for r in compiled)]
