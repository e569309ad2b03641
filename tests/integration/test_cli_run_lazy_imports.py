"""`conveyor run` of a `.gitlab-ci.yml` imports a keyword's machinery only when the file uses
the keyword: a short run's time is mostly imports (docs/benchmarks.md, "GitLab pipelines").
`conveyor run` of one native job, `validate` and `--version` keep off what only the server,
the fleet, sandboxed steps or remote includes need ("CLI start-up").

A real `conveyor run` in a git repository, from a child Python that writes `sys.modules` to a
file when it exits; the second test is the control: the same modules are imported as soon
as the file uses `include`, `rules:if`, `cache` and a dotenv report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
}

# The child: record every module imported by the run, then run the CLI as the script does.
CHILD = """
import atexit, os, sys

def dump():
    with open(os.environ["MODULES_OUT"], "w", encoding="utf-8") as out:
        out.write("\\n".join(sorted(sys.modules)))

atexit.register(dump)
from conveyor.cli import main
sys.exit(main())
"""

LAZY = (
    "conveyor.config.expr_grammar",  # rules:if / when.if expressions
    "re2",  # a /regex/ in an expression
    "conveyor.config.gitlab.includes",  # include:
    "conveyor.config.gitlab.include_entries",
    "conveyor.config.gitlab.include_rules",
    "conveyor.config.gitlab.cache",  # cache:
    "conveyor.engine.cache",
    "conveyor.engine.dotenv",  # artifacts:reports:dotenv
)

# Never imported by `conveyor run` of a native job without a sandbox, nor by the lighter
# commands below: the server, the monitor, the fleet and their libraries, the HTTP clients
# (remote includes), the git adapter and log reader (resumed runs, isolated jobs), cgroups
# (sandboxed steps with memory or process limits), settings (pydantic).
OFF_THE_RUN_PATH = (
    "conveyor.engine.cgroups",
    "conveyor.fleet",
    "conveyor.server",
    "conveyor.monitor",
    "conveyor.notify",
    "conveyor.settings",
    "conveyor.outbound.client",
    "conveyor.outbound.http11",
    "conveyor.git.adapter",
    "conveyor.store.logreader",
    "celery",
    "kombu",
    "redis",
    "httpx",
    "httptools",
    "h11",
    "jinja2",
    "uvicorn",
    "uvloop",
    "starlette",
    "fastapi",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "rich",
    "concurrent.futures.thread",
)

# What only a run needs: `validate` and `--version` import none of it.
RUN_ONLY = (
    "asyncio",
    "subprocess",
    "sqlite3",
    "conveyor.engine",
    "conveyor.store",
    "conveyor.runs",
)

NATIVE_ONE_JOB = "jobs:\n  one:\n    run: 'true'\n"

PLAIN = """\
stages: [build, test]
build-1:
  stage: build
  script: echo build
test-1:
  stage: test
  script: echo test
"""

USING_ALL = """\
include: extra.yml
stages: [build, test]
build-1:
  stage: build
  script: echo A=1 > build.env
  rules:
    - if: '$CI_COMMIT_BRANCH == "main" && $CI_COMMIT_BRANCH =~ /\\Amain\\z/'
  cache:
    key: k
    paths: [build.env]
  artifacts:
    reports:
      dotenv: build.env
test-1:
  stage: test
  script: test "$A" = 1
"""


def _run_and_list_modules(
    tmp_path: Path, files: dict[str, str], command: tuple[str, ...] = ("run",)
) -> set[str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, timeout=30, check=True)
    out = tmp_path / "modules.txt"
    env = {k: v for k, v in GIT_ENV.items() if not k.startswith("CONVEYOR")}
    env |= {"CONVEYOR_HOME": str(tmp_path / "home"), "MODULES_OUT": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *command],
        cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return set(out.read_text(encoding="utf-8").splitlines())


def test_run_of_plain_gitlab_file_leaves_keyword_modules_unimported(tmp_path: Path) -> None:
    modules = _run_and_list_modules(tmp_path, {".gitlab-ci.yml": PLAIN})

    assert "conveyor.config.gitlab.parse" in modules  # the run did load the file
    assert [name for name in LAZY if name in modules] == []


def test_run_of_gitlab_file_using_the_keywords_imports_their_modules(tmp_path: Path) -> None:
    files = {".gitlab-ci.yml": USING_ALL, "extra.yml": "variables:\n  FROM_INCLUDE: 'yes'\n"}

    modules = _run_and_list_modules(tmp_path, files)

    assert [name for name in LAZY if name not in modules] == []


def test_run_never_loads_the_fleet(tmp_path: Path) -> None:
    modules = _run_and_list_modules(tmp_path, {".gitlab-ci.yml": PLAIN})

    fleet = [m for m in modules if m.split(".")[0] in ("celery", "kombu", "redis")]
    assert fleet + [m for m in modules if m.startswith("conveyor.fleet")] == []


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of `names` (or of their packages) in `modules`."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_run_of_one_native_job_keeps_off_the_server_fleet_and_sandbox(tmp_path: Path) -> None:
    modules = _run_and_list_modules(tmp_path, {".conveyor.yml": NATIVE_ONE_JOB})

    assert "conveyor.engine.runner" in modules  # the run did run its job
    assert _loaded(modules, OFF_THE_RUN_PATH) == []


def test_validate_imports_nothing_of_the_run(tmp_path: Path) -> None:
    modules = _run_and_list_modules(tmp_path, {".conveyor.yml": NATIVE_ONE_JOB}, ("validate",))

    assert "conveyor.config.native" in modules  # the file was validated
    assert _loaded(modules, OFF_THE_RUN_PATH + RUN_ONLY) == []


def test_version_imports_neither_the_run_nor_yaml(tmp_path: Path) -> None:
    modules = _run_and_list_modules(tmp_path, {".conveyor.yml": NATIVE_ONE_JOB}, ("--version",))

    assert _loaded(modules, (*OFF_THE_RUN_PATH, *RUN_ONLY, "yaml", "conveyor.config")) == []
