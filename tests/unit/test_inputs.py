"""conveyor.inputs: refs by git's branch and tag name rules, trigger variable names."""

from __future__ import annotations

import pytest

from conveyor.errors import InvalidRef, RefusedVariable
from conveyor.inputs import (
    MAX_REF_BYTES,
    check_ref,
    check_variable_names,
    ref_problem,
    variable_problem,
)


@pytest.mark.parametrize(
    "ref",
    ["main", "feature/x", "v1.2.3", "release-2026.11", "a/b/c", "ü-branch", "x@y", "a.b", "_"],
)
def test_ref_problem_accepts_branch_and_tag_names(ref: str) -> None:
    assert ref_problem(ref) is None


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("", "is empty"),
        ("a" * (MAX_REF_BYTES + 1), "is longer than 255 bytes"),
        ("é" * 128, "is longer than 255 bytes"),
        ("main\x00x", "contains a control character (NUL, newline, …)"),
        ("main\x7f", "contains a control character (NUL, newline, …)"),
        ("main^{tree}", "contains '^' (revision syntax, not a branch or tag name)"),
        ("main:.conveyor.yml", "contains ':' (revision syntax, not a branch or tag name)"),
        ("a b~", "contains space, '~' (revision syntax, not a branch or tag name)"),
        ("a..b", "contains '..'"),
        ("a@{1}", "contains '@{' (revision syntax, not a branch or tag name)"),
        ("@", "is '@', not a branch or tag name"),
        ("HEAD", "is 'HEAD', not a branch or tag name"),
        ("-x", "starts with '-'"),
        ("/x", "has an empty path component (a leading, trailing or doubled '/')"),
        ("x/", "has an empty path component (a leading, trailing or doubled '/')"),
        ("a//b", "has an empty path component (a leading, trailing or doubled '/')"),
        ("x.", "ends with '.'"),
        ("a/.b", "has a path component starting with '.'"),
        ("a.lock/b", "has a path component ending with '.lock'"),
    ],
)
def test_ref_problem_refuses_what_git_refuses(ref: str, expected: str) -> None:
    assert ref_problem(ref) == expected


def test_check_ref_never_repeats_the_ref() -> None:
    with pytest.raises(InvalidRef) as caught:
        check_ref("evil\x00ref", where="POST /api/v1/runs: ref")
    assert "evil" not in str(caught.value)
    assert str(caught.value).startswith("POST /api/v1/runs: ref: the ref contains a control")
    assert (caught.value.http_status, caught.value.code, caught.value.exit_code) == (
        422,
        "invalid_ref",
        2,
    )


def test_check_ref_returns_a_valid_ref() -> None:
    assert check_ref("main", where="x") == "main"


@pytest.mark.parametrize(
    "name", ["BASH_ENV", "ENV", "PATH", "LD_PRELOAD", "LD_AUDIT", "BASH_FUNC_x%%", "PS4", "IFS"]
)
def test_variable_problem_refuses_start_up_variables(name: str) -> None:
    assert variable_problem(name) is not None


@pytest.mark.parametrize("name", ["DEPLOY", "bash_env", "PATHS", "GIT_DEPTH", "LD", "CI_DEBUG"])
def test_variable_problem_accepts_others(name: str) -> None:
    assert variable_problem(name) is None


def test_check_variable_names_names_one() -> None:
    with pytest.raises(RefusedVariable, match=r"^--var: variable BASH_ENV changes how"):
        check_variable_names(["DEPLOY", "BASH_ENV"], where="--var")


def test_check_variable_names_names_every_refused_one_sorted() -> None:
    with pytest.raises(RefusedVariable, match=r"^x: variables LD_PRELOAD, PATH change how"):
        check_variable_names(["PATH", "OK", "LD_PRELOAD"], where="x")


def test_check_variable_names_passes_others() -> None:
    check_variable_names(["DEPLOY", "TARGET"], where="x")
