"""GitLab CI/CD variable expressions (`rules:if`, native `when.if`) and `$VAR` expansion.

Owns: the expression language's public face and semantics, shared by both pipeline
flavors (it re-exports `expr_values`: the value type, NAME_PATTERN, ExprError); the tokens,
tree, parser and evaluator live in expr_grammar.py, imported on the first expression (a
pipeline without `if:` never needs them: it saves a short run's start).
Must not: read the environment (variables come in as a mapping) or know about jobs.

Grammar (loosest binding first):
    expr    := and ( "||" and )*
    and     := cmp ( "&&" cmp )*
    cmp     := operand [ ("==" | "!=") operand | ("=~" | "!~") operand ]
    operand := "$NAME" | "${NAME}" | "string" | 'string' | null | /regex/flags | "(" expr ")"

Semantics follow GitLab's evaluator: an unset variable is null; a bare operand is true when
it is a non-empty string; `&&`/`||` return one of their operands (Ruby semantics, where ""
counts as a value) and the whole statement is true when the result is true or a non-empty
string. `=~` is false when the pattern is null; its left side null matches as "". A pattern
may come from a variable holding `/re/flags` (any other text is used as the regex itself).
Regexes are RE2, as GitLab's (expr_regex.py: `\\A`, `\\z`, flags i, m, s, U after the slash).
Strings have no escapes (as in GitLab: a string ends at the next matching quote).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from conveyor.config.expr_values import NAME_PATTERN, ExprError, Value

if TYPE_CHECKING:
    from conveyor.config.expr_grammar import Node

__all__ = [
    "NAME_PATTERN",
    "ExprError",
    "Value",
    "evaluate",
    "expand",
    "parse_expression",
    "validate_expression",
]

# ---------------------------------------------------------------- the public face
# The grammar (expr_grammar.py) is imported on the first expression, not at start-up.


def parse_expression(expr: str) -> Node:
    """Parse once (cached); raises ExprError with the column of the problem."""
    from conveyor.config.expr_grammar import parse_tree

    return parse_tree(expr)


def validate_expression(expr: str) -> None:
    """Raise ExprError when `expr` is not a valid expression."""
    parse_expression(expr)


def evaluate(expr: str, variables: Mapping[str, str]) -> bool:
    """True when the GitLab CI/CD expression `expr` holds. Raises ExprError on bad syntax."""
    from conveyor.config.expr_grammar import evaluate_tree, parse_tree

    return evaluate_tree(parse_tree(expr), variables)


# ---------------------------------------------------------------- expansion


@cache
def _expand_regex() -> re.Pattern[str]:
    return re.compile(rf"\$(?:(\$)|\{{({NAME_PATTERN})\}}|({NAME_PATTERN}))")


def expand(text: str, variables: Mapping[str, str], *, keep_unknown: bool = False) -> str:
    """Replace `$VAR` and `${VAR}` by their values (unknown: "", or left as written with
    `keep_unknown`, GitLab's `expand_existing` for runner tags), and `$$` by `$`."""
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(3)
        if keep_unknown and name not in variables:
            return match.group(0)
        return variables.get(name, "")

    return _expand_regex().sub(replace, text)
