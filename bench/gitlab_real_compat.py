"""`make compat`, second part: the job sets of the real projects (tests/gitlab_real/).

For each project gitlab-ci-local can list offline, the jobs conveyor plans for a push to
the default branch (`main`) against the jobs `gitlab-ci-local --list-json` lists
(tests/gitlab_corpus/jobsets.py). Projects whose includes need the network are skipped with
the reason. The differences are explained in docs/gitlab-compat.md ("Real projects");
exit status 1 when a difference is not one of those (KNOWN below).
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitlab_corpus.gcl import find_gcl, gcl_version
from tests.gitlab_corpus.jobsets import KNOWN_DIFFERENCES, JobSets, compare_project, real_projects


def _line(result: JobSets) -> str:
    if result.skipped:
        return f"{result.project:32} skipped: {result.skipped}"
    verdict = "differs" if result.differs else "same"
    return f"{result.project:32} {verdict:8} {result.same} job(s) in both"


def main() -> int:
    if find_gcl() is None:
        print("gitlab-ci-local is not installed: run `make compat` (bench/gitlab_tools.py)")
        return 2
    print(f"gitlab-ci-local {gcl_version()}: job sets of a push to main, real projects")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda p: compare_project(p, tmp / p.name), real_projects()))
    unexpected = 0
    for result in results:
        print(_line(result))
        for name in result.only_conveyor:
            print(f"    only conveyor plans {name!r}")
        for name in result.only_gcl:
            print(f"    only gitlab-ci-local lists {name!r}")
        if result.differs and KNOWN_DIFFERENCES.get(result.project) != (
            result.only_conveyor,
            result.only_gcl,
        ):
            unexpected += 1
            print("    (not explained in docs/gitlab-compat.md)")
    compared = [r for r in results if not r.skipped]
    print(
        f"{len(results)} projects: {len(compared)} compared, "
        f"{sum(not r.differs for r in compared)} same, {sum(r.differs for r in compared)} "
        f"different, {len(results) - len(compared)} skipped; {unexpected} unexplained"
    )
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
