"""`make compat`: every corpus pipeline run by conveyor and by gitlab-ci-local, each
compared with the case's expectation (tests/gitlab_corpus/*/expect.yml).

Exit status 1 when conveyor disagrees with an expectation (cases with a documented
`engine_gap` aside) or when gitlab-ci-local disagrees with an expectation recorded from it.
Differences of gitlab-ci-local on expectations taken from GitLab's documentation are
printed: they are the places where it does not behave as GitLab (see docs/gitlab-compat.md).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gitlab_corpus.gcl import (
    compare_gcl,
    find_gcl,
    gcl_args,
    gcl_version,
    prepare_repo,
    run_gcl,
)
from tests.gitlab_corpus.runner import case_dirs, check, load_expect, run_case


def main() -> int:
    if find_gcl() is None:
        print("gitlab-ci-local is not installed: run `make compat` (bench/gitlab_tools.py)")
        return 2
    print(f"gitlab-ci-local {gcl_version()}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for case in case_dirs():
            expect = load_expect(case)
            source = str(expect["source"])
            from_gcl = source.startswith("gitlab-ci-local")
            conveyor = check(expect, asyncio.run(run_case(case, tmp / "conveyor")))
            repo = prepare_repo(case, tmp / "gcl" / case.name, str(expect.get("ref", "main")))
            gcl = (
                compare_gcl(expect, run_gcl(repo, *gcl_args(expect)))
                if expect.get("event", "push") == "push"
                else None
            )
            gap = expect.get("engine_gap")
            conveyor_ok = not conveyor
            if not conveyor_ok and not gap:
                failures += 1
            if from_gcl and gcl:
                failures += 1
            gcl_text = "n/a (event)" if gcl is None else ("agrees" if not gcl else "differs")
            print(
                f"{case.name:42} conveyor: {'agrees' if conveyor_ok else 'DIFFERS':8} "
                f"gitlab-ci-local: {gcl_text:12} source: {'gcl' if from_gcl else 'docs'}"
            )
            for diff in conveyor:
                print(f"    conveyor: {diff}" + (f" (known: {gap})" if gap else ""))
            for diff in gcl or ():
                print(f"    gitlab-ci-local: {diff}")
    print(f"{len(case_dirs())} cases, {failures} unexpected difference(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
