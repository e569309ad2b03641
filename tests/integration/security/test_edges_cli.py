"""Issue 15, item 5 on the command line: `conveyor run --var BASH_ENV=…` and `--ref` with
revision syntax exit 2 with a clear message, before any job starts; a home folder that
existed with open modes is made private."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = "name: demo\njobs:\n  build:\n    run: echo built > built.txt\n"


def _conveyor(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONVEYOR_HOME": str(project / ".home")},
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".conveyor.yml").write_text(PIPELINE)
    return tmp_path


@pytest.mark.parametrize("name", ["BASH_ENV", "LD_PRELOAD", "PATH"])
def test_edges_cli_var_refuses_start_up_variables(project: Path, name: str) -> None:
    done = _conveyor(project, "run", "--var", f"{name}=./evil.sh")
    assert done.returncode == 2
    assert f"--var: variable {name} changes how a job's shell" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "built.txt").exists()


@pytest.mark.parametrize("ref", ["main^{tree}", "main:.conveyor.yml", "a..b"])
def test_edges_cli_ref_refuses_revision_syntax(project: Path, ref: str) -> None:
    done = _conveyor(project, "run", "--ref", ref)
    assert done.returncode == 2
    assert "Invalid value for '--ref'" in done.stderr
    assert not (project / "built.txt").exists()


def test_edges_cli_home_is_made_private(project: Path) -> None:
    home = project / ".home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    done = _conveyor(project, "run")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "conveyor.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((project / "built.txt").stat().st_mode) & 0o044  # umask left alone
