"""A pull request's commit status end to end: a real `conveyor serve` process, a signed
GitHub `pull_request` delivery (the octokit example payload) whose head is a commit of a
real repository, and a fake GitHub on loopback speaking the statuses API
(tests/fakes/status_sinks.py). The statuses land on the pull request's head commit, not on
its base, `pending` then `success`, with the pipeline's context, the run's link and the
token only in the Authorization header."""

from __future__ import annotations

from pathlib import Path

import httpx

from conveyor.store import open_store
from tests.conveyor_process import conveyor_process
from tests.fakes.git_repos import GitRepo
from tests.fakes.status_sinks import open_status_sinks
from tests.integration.server.conftest import ENV, github_headers
from tests.integration.server.test_change_triggers import pull_request_body

STATUS_TOKEN = "ghp_statustoken0123456789abcdefghijklmn"
PUBLIC_URL = "http://ci.example"
SETTINGS = """
[server]
api_token_env = "CONVEYOR_API_TOKEN"
public_url = "{public_url}"
shutdown_grace = 2

[sandbox]
mode = "none"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{clone_url}"
secret_env = "GH_HOOK_SECRET"
status_token_env = "GH_STATUS_TOKEN"
api_url = "{api_url}"
"""


def test_pull_request_statuses_land_on_its_head_commit(tmp_path: Path) -> None:
    remote = GitRepo.create(
        tmp_path / "remote", {".conveyor.yml": "name: checks\njobs:\n  build:\n    run: echo ok\n"}
    )
    base = remote.head()
    remote.branch("feature")
    head = remote.commit({"src/app.py": "print('pr')\n"}, "Change the app")
    remote.git("checkout", "--quiet", "main")
    body = pull_request_body(head, base_sha=base)
    config = tmp_path / "conveyor.toml"
    with open_status_sinks() as sinks:
        config.write_text(
            SETTINGS.format(
                public_url=PUBLIC_URL, clone_url=remote.clone_url, api_url=sinks.github_api_url
            )
        )
        env = {
            **ENV,
            "CONVEYOR_HOME": str(tmp_path / "home"),
            "GH_STATUS_TOKEN": STATUS_TOKEN,
            "CONVEYOR_NOTIFY_NO_WAIT": "1",
        }
        serve = ["serve", "-c", str(config), "--port", "0"]
        with conveyor_process(serve, env, tmp_path) as server:
            answer = httpx.post(
                f"{server.base_url}/webhooks/github",
                content=body,
                headers=github_headers(body, event="pull_request", delivery="pr-delivery-1"),
            )
            assert answer.status_code == 202, answer.text
            run_id = answer.json()["run_id"]
            requests = sinks.wait_for(2, "github", timeout_s=30)
            output = server.stop().decode(errors="replace")
            assert server.proc.returncode == 0, output[-2000:]
    store = open_store(tmp_path / "home")
    run = store.get_run(run_id)
    store.close()
    assert run is not None and (run.sha, str(run.status)) == (head, "success")
    assert [(r.method, r.path) for r in requests] == [
        ("POST", f"/repos/acme/app/statuses/{head}"),
        ("POST", f"/repos/acme/app/statuses/{head}"),
    ]
    bodies = [r.json() for r in requests]
    assert [b["state"] for b in bodies] == ["pending", "success"]
    assert {b["context"] for b in bodies} == {"conveyor/checks"}
    assert {b["target_url"] for b in bodies} == {f"{PUBLIC_URL}/api/v1/runs/{run_id}"}
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {STATUS_TOKEN}"}
    assert all(STATUS_TOKEN not in r.path and STATUS_TOKEN not in r.body.decode() for r in requests)
    assert STATUS_TOKEN not in output
    assert base not in {r.path.rsplit("/", 1)[1] for r in requests}
