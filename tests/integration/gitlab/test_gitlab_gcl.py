"""Expectations sourced from gitlab-ci-local are checked against gitlab-ci-local itself.

Needs Node.js ≥ 22, gitlab-ci-local and rsync (`make compat` installs them into .tools/);
skipped when they are absent, so `make test` does not need them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitlab_corpus.gcl import (
    compare_gcl,
    find_gcl,
    gcl_args,
    gcl_version,
    prepare_repo,
    run_gcl,
)
from tests.gitlab_corpus.runner import case_dirs, load_expect

pytestmark = [
    pytest.mark.gitlab_ci_local,
    pytest.mark.skipif(find_gcl() is None, reason="gitlab-ci-local not installed (make compat)"),
]

GCL_CASES = [
    case for case in case_dirs() if str(load_expect(case)["source"]).startswith("gitlab-ci-local")
]


def test_gcl_version_is_the_recorded_one() -> None:
    recorded = {str(load_expect(case)["source"]).split()[1] for case in GCL_CASES}
    assert recorded == {gcl_version()}


@pytest.mark.parametrize("case", GCL_CASES, ids=[case.name for case in GCL_CASES])
def test_gcl_agrees_with_expectation(case: Path, tmp_path: Path) -> None:
    expect = load_expect(case)
    repo = prepare_repo(case, tmp_path / case.name, str(expect.get("ref", "main")))
    assert compare_gcl(expect, run_gcl(repo, *gcl_args(expect))) == []
