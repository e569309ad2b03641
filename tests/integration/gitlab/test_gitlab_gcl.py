"""Expectations sourced from gitlab-ci-local are checked against gitlab-ci-local itself.

Needs Node.js ≥ 22, gitlab-ci-local and rsync (`make compat` installs them into .tools/);
skipped when they are absent, so `make test` does not need them. The cases run three at a
time (each is a separate gitlab-ci-local process in its own repository) to keep the suite
fast; each test then checks one case's result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.gitlab_corpus.gcl import compare_gcl, find_gcl, gcl_args, gcl_version, prepare_repo
from tests.gitlab_corpus.gcl import run_gcl as run_gitlab_ci_local
from tests.gitlab_corpus.runner import case_dirs, load_expect

pytestmark = [
    pytest.mark.gitlab_ci_local,
    pytest.mark.timeout(240),  # the first test's setup runs every case (about 25 s)
    pytest.mark.skipif(find_gcl() is None, reason="gitlab-ci-local not installed (make compat)"),
]

GCL_CASES = [
    case for case in case_dirs() if str(load_expect(case)["source"]).startswith("gitlab-ci-local")
]


def _check(case: Path, root: Path) -> list[str]:
    expect = load_expect(case)
    repo = prepare_repo(case, root / case.name, str(expect.get("ref", "main")))
    return compare_gcl(expect, run_gitlab_ci_local(repo, *gcl_args(expect)))


@pytest.fixture(scope="module")
def gcl_diffs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("gcl")
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda case: _check(case, root), GCL_CASES)
        return {case.name: diffs for case, diffs in zip(GCL_CASES, results, strict=True)}


def test_gcl_version_is_the_recorded_one() -> None:
    recorded = {str(load_expect(case)["source"]).split()[1] for case in GCL_CASES}
    assert recorded == {gcl_version()}


@pytest.mark.parametrize("case", GCL_CASES, ids=[case.name for case in GCL_CASES])
def test_gcl_agrees_with_expectation(case: Path, gcl_diffs: dict[str, list[str]]) -> None:
    assert gcl_diffs[case.name] == []
