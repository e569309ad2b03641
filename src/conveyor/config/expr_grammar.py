"""The grammar of GitLab CI/CD variable expressions: tokens, syntax tree, parser, evaluator.

Owns: turning an expression into a tree (`parse_tree`, cached) and evaluating a tree
against variables (`evaluate_tree`), with the semantics described in expr.py.
Must not: be imported at start-up. expr.py is the public face and imports this module on the
first expression it meets: a pipeline without `if:` never needs it, and its five node and
token classes and its compiled token regex are a measurable part of a short run's start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from conveyor.config.expr_regex import Regex, compile_literal, compile_text
from conveyor.config.expr_values import NAME_PATTERN, ExprError, Value

__all__ = ["Node", "evaluate_tree", "parse_tree"]

# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<var>\$(?:\{{(?P<bname>{NAME_PATTERN})\}}|(?P<name>\w+)))
  | (?P<dq>"[^"]*")
  | (?P<sq>'[^']*')
  | (?P<op>==|!=|=~|!~|&&|\|\|)
  | (?P<paren>[()])
  | (?P<null>null\b)
  | (?P<pattern>/(?:[^/\\]|\\.)*/[A-Za-z]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # var, str, op, paren, null, pattern, end
    text: str
    col: int


def _tokenize(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ExprError(f"unexpected {expr[pos : pos + 10]!r}", pos + 1)
        kind = match.lastgroup or ""
        text = match.group(0)
        col = pos + 1
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "var" or kind in ("bname", "name"):
            tokens.append(_Token("var", match.group("bname") or match.group("name"), col))
        elif kind in ("dq", "sq"):
            tokens.append(_Token("str", text[1:-1], col))
        else:
            tokens.append(_Token(kind, text, col))
    tokens.append(_Token("end", "", len(expr) + 1))
    return tokens


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class _Var:
    name: str


@dataclass(frozen=True, slots=True)
class _Lit:
    value: str | None


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: Regex


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: Node
    right: Node


Node = _Var | _Lit | _Pattern | _Binary


class _Parser:
    def __init__(self, expr: str) -> None:
        self.tokens = _tokenize(expr)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExprError("empty expression", 1)
        node = self.parse_or()
        token = self.peek()
        if token.kind != "end":
            raise ExprError(f"unexpected {token.text!r}", token.col)
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.peek().text == "||" and self.peek().kind == "op":
            self.take()
            node = _Binary("||", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_cmp()
        while self.peek().text == "&&" and self.peek().kind == "op":
            self.take()
            node = _Binary("&&", node, self.parse_cmp())
        return node

    def parse_cmp(self) -> Node:
        left = self.parse_operand()
        token = self.peek()
        if token.kind == "op" and token.text in ("==", "!=", "=~", "!~"):
            self.take()
            right = self.parse_operand()
            if token.text in ("==", "!=") and isinstance(right, _Pattern):
                raise ExprError(f"a /regex/ needs =~ or !~, not {token.text}", token.col)
            if isinstance(left, _Pattern):
                raise ExprError("a /regex/ belongs on the right of =~ or !~", token.col)
            return _Binary(token.text, left, right)
        if isinstance(left, _Pattern):
            raise ExprError("a /regex/ alone is not a condition (compare with =~)", token.col)
        return left

    def parse_operand(self) -> Node:
        token = self.take()
        if token.kind == "var":
            return _Var(token.text)
        if token.kind == "str":
            return _Lit(token.text)
        if token.kind == "null":
            return _Lit(None)
        if token.kind == "pattern":
            return _Pattern(compile_literal(token.text, token.col))
        if token.text == "(":
            node = self.parse_or()
            closing = self.take()
            if closing.text != ")":
                raise ExprError("missing ')'", closing.col)
            return node
        if token.kind == "end":
            raise ExprError("expression ends too early (a value is missing)", token.col)
        raise ExprError(f"expected a value, got {token.text!r}", token.col)


@lru_cache(maxsize=4096)
def parse_tree(expr: str) -> Node:
    """Parse once (cached); raises ExprError with the column of the problem."""
    return _Parser(expr).parse()


# ---------------------------------------------------------------- evaluation


def _is_truthy(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    return bool(value)


def _is_ruby_truthy(value: Value) -> bool:
    return value is not None and value is not False


def _pattern_from(value: Value) -> Regex | None:
    if value is None or isinstance(value, bool):
        return None
    return compile_text(value)


def _evaluate(node: Node, variables: Mapping[str, str]) -> Value:
    if isinstance(node, _Var):
        return variables.get(node.name)
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Pattern):
        return node.regex.pattern
    if node.op == "&&":
        left = _evaluate(node.left, variables)
        return _evaluate(node.right, variables) if _is_ruby_truthy(left) else left
    if node.op == "||":
        left = _evaluate(node.left, variables)
        return left if _is_ruby_truthy(left) else _evaluate(node.right, variables)
    left = _evaluate(node.left, variables)
    if node.op in ("==", "!="):
        equal = left == _evaluate(node.right, variables)
        return equal if node.op == "==" else not equal
    if isinstance(node.right, _Pattern):
        regex: Regex | None = node.right.regex
    else:
        regex = _pattern_from(_evaluate(node.right, variables))
    if regex is None:
        return node.op == "!~"
    text = left if isinstance(left, str) else ""
    found = regex.search(text) is not None
    return found if node.op == "=~" else not found


def evaluate_tree(node: Node, variables: Mapping[str, str]) -> bool:
    """True when the parsed expression holds (the statement's truth, as GitLab's)."""
    return _is_truthy(_evaluate(node, variables))
