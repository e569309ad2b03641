"""The embedded store runs without SQLAlchemy: `conveyor run`, `runs` and `show` on a store
at the head revision, as real CLI processes, never import `sqlalchemy` or `alembic`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PIPELINE = """\
name: light
jobs:
  build:
    run: echo built
  test:
    needs: [build]
    run: echo tested
"""

# Runs the CLI in this interpreter, then reports which of the two were imported.
_CLI_AND_REPORT = (
    "import sys\n"
    "from conveyor.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    assert not exc.code, exc.code\n"
    "found = sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'})\n"
    "sys.stderr.write('IMPORTED=' + ','.join(found) + '\\n')\n"
)


def conveyor(project: Path, *args: str) -> tuple[str, str]:
    """Run `conveyor ARGS` in `project`; its stdout, and the heavy modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR")}
    env["CONVEYOR_HOME"] = str(project / ".home")
    done = subprocess.run(
        [sys.executable, "-c", _CLI_AND_REPORT, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = done.stderr.rsplit("IMPORTED=", 1)[1].strip()
    return done.stdout, imported


def test_cli_on_existing_store_never_imports_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text(PIPELINE)
    conveyor(tmp_path, "run", "--json")  # creates the store (without SQLAlchemy too)
    out, imported_by_run = conveyor(tmp_path, "run", "--json")
    run_id = json.loads(out)["run_id"]
    shown, imported_by_show = conveyor(tmp_path, "show", run_id, "--json")
    listed, imported_by_runs = conveyor(tmp_path, "runs", "--json")
    assert (imported_by_run, imported_by_show, imported_by_runs) == ("", "", "")
    assert [j["status"] for j in json.loads(shown)["jobs"]] == ["success", "success"]
    assert len(json.loads(listed)) == 2


def test_new_store_is_created_without_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from conveyor.store import open_store; "
        "open_store(Path(sys.argv[1])).close(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "conveyor.db").exists()
