"""What both halves of the expression language share: the value an operand evaluates to, a
variable name's pattern, and the syntax error.

`expr` (the public face) and `expr_grammar` (tokens, tree, parser, evaluator) both import
this module, so neither imports the other at module level: the face imports the grammar
lazily, on the first expression. Pure; imports nothing of conveyor.
"""

from __future__ import annotations

__all__ = ["NAME_PATTERN", "ExprError", "Value"]

Value = str | bool | None
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"


class ExprError(ValueError):
    """A syntax error in an expression; `col` is the 1-based column in the expression."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(f"column {col}: {message}")
        self.message = message
        self.col = col
