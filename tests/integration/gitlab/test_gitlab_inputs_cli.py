"""`--input NAME=VALUE` of `conveyor validate`, `plan` and `run`: the values of the main
file's own `spec:inputs`, typed as the spec says; an undeclared or ill-typed one is refused
with exit 2 and FILE:LINE:COL. Real child processes in a real git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.gitlab.test_gitlab_unavailable_cli import GIT_ENV, conveyor

PIPELINE = """\
spec:
  inputs:
    target:
      options: [staging, production]
      default: staging
    replicas:
      type: number
      default: 1
---
deploy-$[[ inputs.target ]]:
  script: echo "deploying $[[ inputs.replicas ]] to $[[ inputs.target ]]"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitlab-ci.yml").write_text(PIPELINE, encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(root), *args], env=GIT_ENV, check=True, timeout=30)
    return root


def test_plan_and_run_take_the_inputs(repo: Path) -> None:
    planned = conveyor(repo, "plan", "--json", "--input", "target=production")
    assert planned.returncode == 0, planned.stderr
    assert [job["name"] for job in json.loads(planned.stdout)["jobs"]] == ["deploy-production"]
    ran = conveyor(repo, "run", "--input", "target=production", "--input", "replicas=3")
    assert ran.returncode == 0, ran.stderr
    assert "deploying 3 to production" in ran.stdout + ran.stderr


def test_validate_refuses_an_undeclared_or_ill_typed_input(repo: Path) -> None:
    done = conveyor(repo, "validate", "--input", "targt=x", "--input", "replicas=many")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        ".gitlab-ci.yml:3:5: --input targt: not in the file's spec:inputs"
        ' (did you mean "target"?)',
        ".gitlab-ci.yml:6:5: --input replicas=many: expected a number (e.g. 3 or 1.5)",
    ]
    bad_option = conveyor(repo, "validate", "--input", "target=qa")
    assert bad_option.returncode == 2
    assert "input target: 'qa' is not one of its options (staging, production)" in (
        bad_option.stderr
    )
