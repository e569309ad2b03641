"""conveyor.inputs.ref_problem agrees with git itself: `git check-ref-format --branch`
accepts exactly the refs ref_problem accepts (hypothesis draws refs from the characters and
shapes the rules are about; real git answers), but for `@` and `HEAD`, which git's
`--branch` reads as the current branch and conveyor refuses as names."""

from __future__ import annotations

import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.inputs import ref_problem

_PIECES = st.sampled_from(
    ["a", "b", "main", "v1", "é", "/", "//", ".", "..", ".lock", "@", "@{", "{", "}", "-",
     "^", "~", ":", "?", "*", "[", "\\", " ", "\t", "\x7f", "HEAD", "x.y", "_"]
)  # fmt: skip


def _git_accepts(ref: str) -> bool:
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", ref],
        capture_output=True,
        timeout=10,
        check=False,
        env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"},
        cwd="/",
    )
    return done.returncode == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, min_size=1, max_size=6).map("".join))
def test_edges_ref_rule_agrees_with_git(ref: str) -> None:
    # `--branch` also expands `@{-N}` ("the Nth branch checked out before"): outside a
    # repository that fails as well, so git and conveyor both refuse it.
    expected = _git_accepts(ref) and ref not in ("@", "HEAD")
    assert (ref_problem(ref) is None) == expected, ref
