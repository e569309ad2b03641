"""The real projects' job sets against gitlab-ci-local (tests/gitlab_corpus/jobsets.py):
every project gitlab-ci-local can list offline plans the same jobs in conveyor for a push
to main, but for the differences docs/gitlab-compat.md explains (KNOWN_DIFFERENCES).

Needs gitlab-ci-local (`make compat` installs it into .tools/); skipped without it, so
`make test` does not need it. The projects run three at a time (about 10 s)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gitlab_corpus.gcl import find_gcl
from tests.gitlab_corpus.jobsets import KNOWN_DIFFERENCES, JobSets, compare_project, real_projects

pytestmark = [
    pytest.mark.gitlab_ci_local,
    pytest.mark.timeout(60),
    pytest.mark.skipif(find_gcl() is None, reason="gitlab-ci-local not installed (make compat)"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[JobSets]:
    root = tmp_path_factory.mktemp("real")
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda p: compare_project(p, root / p.name), real_projects()))


def test_every_listed_project_plans_the_same_jobs_but_the_documented_ones(
    results: list[JobSets],
) -> None:
    differences = {
        r.project: (r.only_conveyor, r.only_gcl) for r in results if not r.skipped and r.differs
    }
    assert differences == KNOWN_DIFFERENCES


def test_the_projects_without_network_includes_are_compared(results: list[JobSets]) -> None:
    compared = {r.project for r in results if not r.skipped}
    assert compared == {"freedesktop__bustle", "GNOME__gparted", "OpenMW__openmw"}
    assert all(r.skipped for r in results if r.project not in compared)
