"""`conveyor monitor` as a real child process against the fake upstream on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.fakes.upstreams import FakeUpstream, Fault
from tests.fakes.upstreams.scenario import ENV, TOKENS


def _write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(
        "[monitor]\ntimeout = 1.0\n\n"
        f'[[monitor.targets]]\nprovider = "gitlab"\nrepo = "group/sub/app"\nurl = "{url}"\n'
        'token_env = "GITLAB_TOKEN"\n\n'
        f'[[monitor.targets]]\nprovider = "github"\nrepo = "octo/api"\nurl = "{url}"\n'
        'token_env = "GITHUB_TOKEN"\n',
        encoding="utf-8",
    )
    return path


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conveyor",
        "monitor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=30)
    return child.returncode or 0, out.decode(), err.decode()


async def test_cli_monitor_json_prints_entries(fake: FakeUpstream, tmp_path: Path) -> None:
    config = _write_config(tmp_path, fake.url)
    code, out, err = await _run("-c", str(config), "--json", env=ENV)
    entries = json.loads(out)
    assert (code, [e["key"] for e in entries]) == (0, ["group/sub/app@main", "octo/api@main"])
    assert all(not e["stale"] for e in entries), err


async def test_cli_monitor_table_shows_stale_target_and_exits_1(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    fake.faults["octo/api"] = Fault.HTTP_502
    config = _write_config(tmp_path, fake.url)
    code, out, err = await _run("-c", str(config), env={**ENV, "COLUMNS": "200"})
    assert code == 1
    assert "upstream 502" in out and "group/sub/app@main" in out
    assert not any(token in out + err for token in TOKENS)


async def test_cli_monitor_short_gitlab_token_exits_2(fake: FakeUpstream, tmp_path: Path) -> None:
    config = _write_config(tmp_path, fake.url)
    code, _out, err = await _run("-c", str(config), env={**ENV, "GITLAB_TOKEN": "short"})
    assert code == 2
    assert "GITLAB_TOKEN" in err and "short" not in err.replace("implausibly short", "")
    assert fake.requests == []
