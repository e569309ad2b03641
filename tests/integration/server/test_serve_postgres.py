"""`conveyor serve` with `server.store_url_env`: the real server process keeps its runs in a
real PostgreSQL (tests/postgres.py) instead of SQLite, and the URL's password never
appears in a log line. Also the settings rules for that key."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conveyor.errors import ConfigError
from conveyor.model import RunRecord
from conveyor.settings import parse_settings
from conveyor.store import open_store_url
from tests.conveyor_process import ConveyorProcess
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import ENV, github_headers, github_push_body, settings_text

PASSWORD = "store-password-0123456789xyz"  # a fake, checked never to be logged


def _with_password(url: str) -> str:
    # The test server trusts local connections: the password is sent nowhere, only carried.
    return sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def _wait_for_final_run(url: str, run_id: str) -> RunRecord:
    deadline = time.monotonic() + 30
    store = open_store_url(url)
    try:
        while time.monotonic() < deadline:
            run = store.get_run(run_id)
            if run is not None and run.status.is_final:
                return run
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError(f"run {run_id} never ended in PostgreSQL")


def _start_server(config: Path, home: Path, store_url: str) -> ConveyorProcess:
    env = {**ENV, "CONVEYOR_STORE_URL": store_url, "CONVEYOR_HOME": str(home)}
    return ConveyorProcess(["serve", "-c", str(config), "--port", "0"], env, config.parent)


def _stop(server: ConveyorProcess) -> str:
    server.stop(grace_s=30)
    return server.text()


def test_serve_second_server_on_the_same_postgres_store_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text(settings_text("/r", "/r", store_url_env="CONVEYOR_STORE_URL"))
    url = _with_password(postgres_url)
    first = _start_server(config, tmp_path / "home-1", url)
    try:
        first.wait_for_event("server.listening")
        second = _start_server(config, tmp_path / "home-2", url)
        code = second.proc.wait(timeout=30)
        refused = _stop(second)
    finally:
        _stop(first)
    assert code == 1, refused
    assert "another conveyor server is using the store" in refused
    assert PASSWORD not in refused


def test_serve_keeps_runs_in_postgres_without_logging_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    remote = GitRepo.create(
        tmp_path / "remote", {".conveyor.yml": "jobs:\n  a:\n    run: echo hi\n"}
    )
    config = tmp_path / "conveyor.toml"
    text = settings_text(remote.clone_url, remote.clone_url, store_url_env="CONVEYOR_STORE_URL")
    config.write_text(text)
    server = _start_server(config, tmp_path / "home", _with_password(postgres_url))
    try:
        port = server.wait_for_event("server.listening")["port"]
        body = github_push_body(remote.head())
        answer = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/github", content=body, headers=github_headers(body)
        )
        assert answer.status_code == 202, answer.text
        run = _wait_for_final_run(postgres_url, answer.json()["run_id"])
    finally:
        output = _stop(server)
    assert (str(run.status), [j.name for j in run.jobs]) == ("success", ["a"])
    assert not (tmp_path / "home" / "conveyor.db").exists()
    assert PASSWORD not in output


def test_settings_store_url_env_must_be_set() -> None:
    text = settings_text("/r", "/r", store_url_env="MISSING_STORE_URL")
    with pytest.raises(ConfigError) as raised:
        parse_settings(text, ENV)
    assert "server.store_url_env" in str(raised.value)
    assert "MISSING_STORE_URL" in str(raised.value)


def test_settings_store_url_is_a_masked_secret_never_given_to_pipelines() -> None:
    text = settings_text("/r", "/r", store_url_env="CONVEYOR_STORE_URL")
    url = f"postgresql+psycopg://ci:{PASSWORD}@db.internal/conveyor"
    settings = parse_settings(text, {**ENV, "CONVEYOR_STORE_URL": url})
    assert settings.secrets.store_url == url
    assert {url, PASSWORD} <= set(settings.secrets.values())
    assert "CONVEYOR_STORE_URL" in settings.secret_variables()
    assert PASSWORD not in repr(settings.secrets)
