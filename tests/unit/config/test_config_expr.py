"""GitLab CI/CD variable expressions and $VAR expansion."""

from __future__ import annotations

import pytest

from conveyor.config.expr import ExprError, evaluate, expand, validate_expression

VARS = {"A": "1", "EMPTY": "", "BRANCH": "main", "PAT": "/^MA/i", "RAW": "ai"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$A", True),
        ("$EMPTY", False),
        ("$UNSET", False),
        ("${A}", True),
        ('$A == "1"', True),
        ("$A == '1'", True),
        ('$A != "1"', False),
        ("$UNSET == null", True),
        ("$EMPTY == null", False),
        ('$EMPTY == ""', True),
        ("null == $UNSET", True),
        ('"main" == $BRANCH', True),
        ("$BRANCH == $BRANCH", True),
        ("$BRANCH =~ /^ma/", True),
        ("$BRANCH =~ /^MA/", False),
        ("$BRANCH =~ /^MA/i", True),
        ("$BRANCH !~ /^ma/", False),
        ("$BRANCH =~ $PAT", True),
        ("$BRANCH =~ $RAW", True),
        ("$BRANCH =~ $UNSET", False),
        ("$BRANCH !~ $UNSET", True),
        ("$UNSET =~ /^$/", True),
        ('$A == "2" || $BRANCH == "main"', True),
        ('$A == "1" && $BRANCH == "dev"', False),
        ('$A == "2" && $A == "2" || $A == "1"', True),
        ('$A == "2" && ($A == "2" || $A == "1")', False),
        ("$EMPTY || $A", False),  # GitLab: "" is a Ruby value, so `||` stops there
        ("$EMPTY && $A", True),
        ("$UNSET || $A", True),
        ("$UNSET && $A", False),
        (r"$BRANCH =~ /ma\/in|main/", True),
        ("$BRANCH =~ /a.n/s", True),
    ],
)
def test_evaluate_follows_gitlab_semantics(expr: str, expected: bool) -> None:
    assert expected == evaluate(expr, VARS)


@pytest.mark.parametrize(
    ("expr", "col", "message"),
    [
        ("", 1, "empty"),
        ("$A ==", 6, "ends too early"),
        ("($A", 4, "missing ')'"),
        ("$A = 1", 4, "unexpected"),
        ("/x/", 4, "alone"),
        ("$A =~ /x/q", 7, "flag"),
        ("$A == /x/", 4, "needs =~"),
        ("/x/ =~ $A", 5, "right of"),
        ("$A =~ /(/", 7, "invalid regex"),
        ("$A $A", 4, "unexpected"),
        ("== $A", 1, "expected a value"),
    ],
)
def test_evaluate_reports_syntax_errors_with_column(expr: str, col: int, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        evaluate(expr, VARS)
    assert col == caught.value.col
    assert message in caught.value.message


def test_expr_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="column 1"):
        validate_expression("")


def test_expand_replaces_variables() -> None:
    assert expand("$A-${BRANCH}-$UNSET", VARS) == "1-main-"


def test_expand_keep_unknown_leaves_unknown_variables_as_written() -> None:
    text = "os-$OS ${ARCH} $$ $EMPTY"
    assert expand(text, {"OS": "linux", "EMPTY": ""}, keep_unknown=True) == "os-linux ${ARCH} $ "


def test_expand_keeps_double_dollar_as_dollar() -> None:
    assert expand("$$A and $ alone", VARS) == "$A and $ alone"


def test_expand_without_dollar_is_identity() -> None:
    assert expand("plain", VARS) == "plain"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('$BRANCH =~ ($A == "1")', False),  # a boolean is not a pattern
        ("$BRANCH =~ $BAD_PATTERN", False),
        ("$BRANCH =~ $BAD_RAW", False),
        ("$BRANCH !~ $BAD_RAW", True),
    ],
)
def test_evaluate_unusable_patterns_never_match(expr: str, expected: bool) -> None:
    variables = {**VARS, "BAD_PATTERN": "/(/", "BAD_RAW": "("}
    assert evaluate(expr, variables) is expected
