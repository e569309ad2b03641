"""The GitLab corpus: every case runs through load_gitlab → plan → the real engine and must
end as its expectation says (expectations recorded with gitlab-ci-local or from GitLab's
documentation; each expect.yml names its source). A case whose expect.yml has
`engine_gap: why` documents a known difference of the engine: it is xfail(strict), so the
marker must go when the engine is fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitlab_corpus.runner import case_dirs, check, load_expect, run_case


def _params() -> list[object]:
    params: list[object] = []
    for case in case_dirs():
        gap = load_expect(case).get("engine_gap")
        marks = [pytest.mark.xfail(reason=str(gap), strict=True)] if gap else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def test_corpus_has_at_least_forty_cases_with_a_source() -> None:
    cases = case_dirs()
    assert len(cases) >= 40
    sources = [str(load_expect(case).get("source", "")) for case in cases]
    assert all(s.startswith(("gitlab-ci-local ", "GitLab docs ")) for s in sources)


@pytest.mark.parametrize("case", _params())
async def test_corpus_case_matches_expectation(case: Path, tmp_path: Path) -> None:
    outcome = await run_case(case, tmp_path)
    assert check(load_expect(case), outcome) == []
