"""The GitLab corpus: every case runs through load_gitlab → plan → the real engine and must
end as its expectation says (expectations recorded with gitlab-ci-local or from GitLab's
documentation; each expect.yml names its source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitlab_corpus.runner import case_dirs, check, load_expect, run_case

CASES = case_dirs()


def test_corpus_has_at_least_forty_cases_with_a_source() -> None:
    assert len(CASES) >= 40
    sources = [str(load_expect(case).get("source", "")) for case in CASES]
    assert all(s.startswith(("gitlab-ci-local ", "GitLab docs ")) for s in sources)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_corpus_case_matches_expectation(case: Path, tmp_path: Path) -> None:
    outcome = await run_case(case, tmp_path)
    assert check(load_expect(case), outcome) == []
