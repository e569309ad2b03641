"""Secrets of `conveyor serve` as a real process: the API token, webhook secrets, the
clone and status tokens and the Slack URL must appear in no HTTP answer (bodies and
headers), no log line and no stored file, while every outside party misbehaves: a wrong
webhook signature, a clone that fails, GitHub answering 401 with the token echoed in its
body, Slack answering 500 with its URL echoed, the API token sent in a query string; and
the store URL's password must not show when PostgreSQL is unreachable.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx
import orjson
import pytest

from conveyor.server.webhook_parse import github_signature
from tests.conveyor_process import ConveyorProcess, conveyor_process
from tests.fakes.status_sinks import SLACK_PATH, Answer, StatusSinks, open_status_sinks
from tests.integration.leaks.scan import find_leaks, plant, tree_bytes


def _serve_process(config: Path, env: dict[str, str]) -> ConveyorProcess:
    return ConveyorProcess(["serve", "-c", str(config), "--port", "0"], env, config.parent)


def _base_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "CONVEYOR_HOME": str(home),
        "CONVEYOR_NOTIFY_NO_WAIT": "1",
    }


def _config(tmp_path: Path, sinks: StatusSinks) -> Path:
    config = tmp_path / "conveyor.toml"
    config.write_text(
        f"""\
[server]
api_token_env = "API_TOK"
shutdown_grace = 1

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{sinks.url}/acme/app.git"
secret_env = "GH_HOOK"
status_token_env = "GH_STATUS"
clone_token_env = "GH_CLONE"
api_url = "{sinks.github_api_url}"

[notify.slack]
webhook_url_env = "SLACK_URL"
"""
    )
    return config


def _push(sha: str) -> bytes:
    return orjson.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "created": True,
            "deleted": False,
            "head_commit": {"id": sha, "message": "a commit"},
            "repository": {"full_name": "acme/app", "default_branch": "main"},
        }
    )


def _blob(response: httpx.Response) -> bytes:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return headers.encode() + b"\n" + response.content


def test_leaks_serve_every_answer_log_and_file_under_failures(tmp_path: Path) -> None:
    secrets = {
        "API_TOK": plant("apiTok"),
        "GH_HOOK": plant("ghHook"),
        "GH_STATUS": plant("ghStatus"),
        "GH_CLONE": plant("ghClone"),
    }
    with open_status_sinks() as sinks:
        slack_url = sinks.slack_webhook_url
        env = {**_base_env(tmp_path / "home"), **secrets, "SLACK_URL": slack_url}
        echo_status = f'{{"message": "Bad credentials: token {secrets["GH_STATUS"]}"}}'
        sinks.script("github", *[Answer(401, body=echo_status.encode())] * 4)
        echo_slack = f"invalid_token for {slack_url}".encode()
        sinks.script("slack", *[Answer(500, body=echo_slack)] * 10)
        bearer = {"authorization": f"Bearer {secrets['API_TOK']}"}
        answers: list[bytes] = []
        with conveyor_process(
            ["serve", "-c", str(config := _config(tmp_path, sinks)), "--port", "0"],
            env,
            config.parent,
        ) as server:
            port = server.wait_for_event("server.listening")["port"]
            base = f"http://127.0.0.1:{port}"
            body = _push("a" * 40)
            wrong = {"x-github-event": "push", "content-type": "application/json"}
            wrong["x-hub-signature-256"] = github_signature(secrets["GH_HOOK"] + "x", body)
            rejected = httpx.post(f"{base}/webhooks/github", content=body, headers=wrong)
            signed = {**wrong, "x-hub-signature-256": github_signature(secrets["GH_HOOK"], body)}
            accepted = httpx.post(f"{base}/webhooks/github", content=body, headers=signed)
            run_id = accepted.json()["run_id"]
            server.wait_for_event("notify.failed", count=2)  # the status and Slack
            run = httpx.get(f"{base}/api/v1/runs/{run_id}", headers=bearer)
            query = httpx.get(f"{base}/api/v1/runs", params={"token": secrets["API_TOK"]})
            answers = [_blob(r) for r in (rejected, accepted, run, query)]
            assert (rejected.status_code, run.json()["status"]) == (401, "failed")
        output = server.output()
    planted = [*secrets.values(), slack_url, SLACK_PATH.rsplit("/", 1)[1]]
    assert find_leaks(planted, output, *answers, tree_bytes(tmp_path / "home")) == []
    assert b"Traceback" not in output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "template",
    [
        "postgresql+psycopg://ci:{password}@127.0.0.1:{port}/conveyor",  # nobody listening
        "postgresql+psycopg://ci:{password}@[::1/conveyor",  # a port that is no number
        "nodriver://ci:{password}@127.0.0.1:{port}/conveyor",  # no such driver
        "not a url {password}",
    ],
)
def test_leaks_serve_bad_store_url_hides_the_password(tmp_path: Path, template: str) -> None:
    password = plant("pgPass")
    url = template.format(password=password, port=_closed_port())
    config = tmp_path / "conveyor.toml"
    config.write_text(
        '[server]\napi_token_env = "API_TOK"\nstore_url_env = "STORE_URL"\n'
        '[[repos]]\nname = "acme/app"\nprovider = "github"\n'
        'clone_url = "https://example.invalid/acme/app.git"\nsecret_env = "GH_HOOK"\n'
    )
    env = {
        **_base_env(tmp_path / "home"),
        "API_TOK": plant("apiTok"),
        "GH_HOOK": plant("ghHook"),
        "STORE_URL": url,
    }
    process = _serve_process(config, env)
    assert process.proc.wait(timeout=60) != 0
    output = process.stop()
    assert find_leaks([password, url], output) == [], output.decode(errors="replace")
    assert b"Traceback" not in output, output.decode(errors="replace")


@pytest.mark.parametrize("user", ["ghp_{token}", "deploy:{token}", "oauth2:{token}"])
def test_leaks_serve_token_in_clone_url_refused_unshown(tmp_path: Path, user: str) -> None:
    token = plant("cloneTok")
    config = tmp_path / "conveyor.toml"
    config.write_text(
        '[server]\napi_token_env = "API_TOK"\n[[repos]]\nname = "acme/app"\n'
        f'provider = "github"\nclone_url = "https://{user.format(token=token)}@example.com/a.git"\n'
        'secret_env = "GH_HOOK"\n'
    )
    env = {**_base_env(tmp_path / "home"), "API_TOK": plant("apiTok"), "GH_HOOK": plant("hook")}
    process = _serve_process(config, env)
    assert process.proc.wait(timeout=60) == 2
    output = process.stop()
    assert b"repos[0].clone_url: must not carry credentials" in output
    assert find_leaks([token], output) == []
