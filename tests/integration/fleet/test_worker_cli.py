"""`conveyor worker`'s refusals before it starts: exit 2 with the problem, never the broker
URL; and `--help` loads no Celery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BROKER = "redis://:worker-secret-password@127.0.0.1:1/0"


def _worker(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "worker", *args],
        cwd=tmp_path, env=env or {"PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_a_missing_settings_file_exits_2(tmp_path: Path) -> None:
    code, output = _worker(tmp_path)
    assert code == 2
    assert "worker.toml: cannot read settings" in output


def test_an_unset_broker_variable_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "worker.toml").write_text("[worker]\n")
    code, output = _worker(tmp_path)
    assert code == 2
    assert "worker.broker_url_env" in output and "CONVEYOR_BROKER_URL" in output


def test_an_empty_queue_exits_2_without_the_broker_url(tmp_path: Path) -> None:
    (tmp_path / "worker.toml").write_text("[worker]\n")
    env = {"PATH": "/usr/bin:/bin", "CONVEYOR_BROKER_URL": BROKER}
    code, output = _worker(tmp_path, "--queue", " ", env=env)
    assert code == 2
    assert "an empty --queue is not a tag" in output
    assert "worker-secret-password" not in output
