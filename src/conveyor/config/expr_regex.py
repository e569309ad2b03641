"""Regular expressions of the expression language, with GitLab's semantics: RE2.

Owns: compiling a `/pattern/flags` literal (or a variable's text used as a pattern) the way
GitLab's `UntrustedRegexp` does: RE2 syntax (`\\A`, `\\z`, no backreferences or lookaround),
the flags after the closing slash (`i`, `m`, `s`, `U`) written as RE2 inline flags, `\\/`
read as `/`. Compiled patterns are cached; RE2 (google-re2) is imported on the first
pattern, never at start-up: most pipelines have none.
Must not: evaluate expressions (expr_grammar.py does) or log: RE2's own error logging is
turned off, its reason goes into the ExprError.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from conveyor.config.expr_values import ExprError

__all__ = ["FLAGS", "Regex", "compile_literal", "compile_text"]

FLAGS = "imsU"  # GitLab passes these to RE2 as inline flags: (?flags)pattern


class Regex(Protocol):
    """What the evaluator needs of a compiled pattern."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...


class _RegexError(ValueError):
    """RE2 refused a pattern; the message is RE2's reason."""


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> Regex:
    import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

    options = re2.Options()
    options.log_errors = False  # RE2 would print the error to stderr itself
    try:
        compiled: Regex = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise _RegexError(str(reason)) from None
    return compiled


def compile_literal(literal: str, col: int) -> Regex:
    """A `/pattern/flags` literal as RE2 compiles it; ExprError (at `col`) when the flags
    or the pattern are not valid."""
    body, _, flags = literal[1:].rpartition("/")
    for flag in flags:
        if flag not in FLAGS:
            raise ExprError(f"unsupported regex flag {flag!r} (use i, m, s or U)", col)
    prefix = f"(?{''.join(dict.fromkeys(flags))})" if flags else ""
    try:
        return _compile(prefix + body.replace("\\/", "/"))
    except _RegexError as exc:
        raise ExprError(f"invalid regex {literal}: {exc}", col) from None


def compile_text(text: str) -> Regex | None:
    """A variable's value used as a pattern: `/pattern/flags` text is a literal, any other
    text the pattern itself; None when it is not a valid pattern (GitLab: no match)."""
    try:
        if len(text) >= 2 and text.startswith("/") and "/" in text[1:]:
            return compile_literal(text, 1)
        return _compile(text)
    except (ExprError, _RegexError):
        return None
