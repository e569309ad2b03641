"""Path globs for changes / exists / artifacts."""

from __future__ import annotations

import pytest

from conveyor.globs import compile_glob, filter_paths, match_any, match_path


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "docs", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "x/y/a.py", True),
        ("*.py", "x/a.py", False),
        ("*.py", ".hidden.py", True),
        ("src/*.{py,pyi}", "src/a.pyi", True),
        ("src/*.{py,pyi}", "src/a.pyc", False),
        ("{a,b{c,d}}/x", "bd/x", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "/.txt", False),
        ("[ab].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("[!a].txt", "b.txt", True),
        ("[^a].txt", "a.txt", False),
        ("[]].txt", "].txt", True),
        ("dist/", "dist/x/y", True),
        ("dist/", "distx", False),
        ("./a/*", "a/.hidden", True),
        ("a/*", "./a/b", True),
        ("[a", "[a", True),
        ("{a", "{a", True),
        ("{a,b", "{a,b", True),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("**", "any/thing", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a+b(c)", "a+b(c)", True),
    ],
)
def test_match_path(pattern: str, path: str, expected: bool) -> None:
    assert expected == match_path(pattern, path)


def test_match_any_needs_one_hit() -> None:
    assert match_any(["*.md", "src/**"], ["x.txt", "src/a/b.py"])
    assert not match_any(["*.md"], ["x.txt"])
    assert not match_any([], ["x.txt"])


def test_filter_paths_keeps_order() -> None:
    assert filter_paths(["*.py"], ["b.py", "c.txt", "a.py"]) == ["b.py", "a.py"]


def test_compile_glob_is_cached() -> None:
    assert compile_glob("x/**") is compile_glob("x/**")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [("[!^a].txt", "^.txt", False), ("[!^a].txt", "b.txt", True), ("x{a,{b}", "x{a,b", True)],
)
def test_match_path_edge_classes_and_braces(pattern: str, path: str, expected: bool) -> None:
    assert match_path(pattern, path) is expected
