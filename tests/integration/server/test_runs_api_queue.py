"""Write routes of the runs API through the real queue and engine: trigger (by ref and by
sha), cancel a running run, play a manual job; a real git repo in tmp_path is the remote.
Also the whole reporting path: GitHub statuses and Slack messages reach the fake sinks
(answering 500 first) while the runs still complete."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.sql import SqlRunStore
from tests.fakes.git_repos import GitRepo
from tests.fakes.status_sinks import Answer, StatusSinks, hang, open_status_sinks
from tests.integration.server.test_runs_api import AUTH, TOKEN, read_events, serve

STATUS_TOKEN = "ghp_statustoken0123456789abcdefghij"
PIPELINE = """\
name: ci
jobs:
  build:
    run: echo building
  test:
    needs: [build]
    matrix: {PY: ["3.12"]}
    run: echo "testing $PY"
  deploy:
    needs: [test]
    manual: true
    run: echo deployed
"""
GREETER = 'name: ci\njobs:\n  greet:\n    run: echo "greeting=$GREETING"\n'
TICKER = "name: ci\njobs:\n  tick:\n    run: for i in 1 2 3; do echo tick $i; sleep 0.2; done\n"
SLOW = "name: ci\njobs:\n  build:\n    run: sleep 30\n"
FAILING = "name: ci\njobs:\n  build:\n    run: echo broken; exit 3\n"
SETTINGS = """
[server]
api_token_env = "CONVEYOR_API_TOKEN"
public_url = "http://ci.example"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{clone_url}"
secret_env = "ACME_HOOK_SECRET"
status_token_env = "ACME_STATUS_TOKEN"
api_url = "{api_url}"

[notify.slack]
webhook_url_env = "SLACK_WEBHOOK_URL"
"""
FINAL = ("success", "failed", "canceled", "skipped")


@dataclass
class Live:
    client: httpx.Client
    store: SqlRunStore
    repo: GitRepo
    sinks: StatusSinks

    def trigger(self, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/runs", json={"repo": "acme/app", "ref": "main", **body}, headers=AUTH
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait(self, run_id: str, states: tuple[str, ...] = FINAL) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = dict(self.client.get(f"/api/v1/runs/{run_id}", headers=AUTH).json())
            if body["status"] in states:
                return body
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} never reached {states}")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    repo = GitRepo.create(tmp_path / "remote", {".conveyor.yml": PIPELINE})
    with open_status_sinks() as sinks:
        env = {
            **os.environ,
            "CONVEYOR_API_TOKEN": TOKEN,
            "ACME_HOOK_SECRET": "hook-secret-0123456789abcdef",
            "ACME_STATUS_TOKEN": STATUS_TOKEN,
            "SLACK_WEBHOOK_URL": sinks.slack_webhook_url,
            "CONVEYOR_NOTIFY_NO_WAIT": "1",
        }
        text = SETTINGS.format(clone_url=repo.clone_url, api_url=sinks.github_api_url)
        settings = parse_settings(text, env)
        store = open_store(tmp_path / "home")
        app = create_app(settings, store=store, env=env, home=tmp_path / "home")
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield Live(client, store, repo, sinks)
        store.close()


def test_trigger_by_ref_runs_the_head_commit(live: Live) -> None:
    accepted = live.trigger()
    final = live.wait(accepted["run_id"])
    assert (accepted["status"], accepted["sha"], accepted["event"]) == (
        "pending",
        live.repo.head(),
        "manual",
    )
    assert final["status"] == "success"
    assert [(j["name"], j["status"]) for j in final["jobs"]] == [
        ("build", "success"),
        ("test [PY=3.12]", "success"),
        ("deploy", "manual"),
    ]


def test_trigger_by_sha_passes_variables(live: Live) -> None:
    wanted = live.repo.commit({".conveyor.yml": GREETER})
    live.repo.commit({".conveyor.yml": FAILING})
    body = live.trigger(sha=wanted, variables={"GREETING": "hi there"})
    final = live.wait(body["run_id"])
    log = live.client.get(f"/api/v1/runs/{body['run_id']}/jobs/greet/log", headers=AUTH)
    assert (final["sha"], final["status"]) == (wanted, "success")
    assert [line["text"] for line in map(orjson.loads, log.content.splitlines())] == [
        "greeting=hi there"
    ]


def test_trigger_of_unknown_ref_is_422_envelope(live: Live) -> None:
    body = {"repo": "acme/app", "ref": "no-such-branch"}
    response = live.client.post("/api/v1/runs", json=body, headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "ref_not_found")


def test_follow_a_live_job_over_sse_until_it_ends(live: Live) -> None:
    live.repo.commit({".conveyor.yml": TICKER})
    run_id = live.trigger()["run_id"]
    url = f"/api/v1/runs/{run_id}/jobs/tick/log"
    with live.client.stream("GET", url, params={"follow": "1"}, headers=AUTH) as response:
        events = read_events(response)
    texts = [orjson.loads(data)["text"] for kind, _, data in events if kind == "message"]
    assert texts == ["tick 1", "tick 2", "tick 3"]
    assert (events[-1][0], orjson.loads(events[-1][2])["status"]) == ("end", "success")


def test_cancel_stops_a_running_run(live: Live) -> None:
    live.repo.commit({".conveyor.yml": SLOW})
    run_id = live.trigger()["run_id"]
    live.wait(run_id, ("running",))
    response = live.client.post(f"/api/v1/runs/{run_id}/cancel", headers=AUTH)
    final = live.wait(run_id)
    assert (response.status_code, response.json()["cancel_requested"]) == (202, True)
    assert final["status"] == "canceled"


def test_play_manual_job_runs_it_in_the_same_run(live: Live) -> None:
    run_id = live.trigger()["run_id"]
    live.wait(run_id)
    response = live.client.post(f"/api/v1/runs/{run_id}/jobs/deploy/play", headers=AUTH)
    assert response.status_code == 202, response.text
    # The play reopened the run before answering: waiting for a final status waits for
    # the resumed execution.
    played = live.wait(run_id)
    log = live.client.get(f"/api/v1/runs/{run_id}/jobs/deploy/log", headers=AUTH)
    assert (response.json()["run_id"], played["run_id"]) == (run_id, run_id)
    assert [j["status"] for j in played["jobs"] if j["name"] == "deploy"] == ["success"]
    assert '"text":"deployed"' in log.text


def test_statuses_land_despite_500s_and_slack_hears_failure_then_recovery(live: Live) -> None:
    live.sinks.script("github", Answer(500), Answer(502))
    live.repo.commit({".conveyor.yml": FAILING})
    failed = live.wait(live.trigger()["run_id"])
    live.repo.commit({".conveyor.yml": PIPELINE})
    fixed = live.wait(live.trigger()["run_id"])
    assert (failed["status"], fixed["status"]) == ("failed", "success")
    slack = [r.json()["text"] for r in live.sinks.wait_for(2, "slack")]
    statuses = [r.json() for r in live.sinks.wait_for(6, "github") if r.json()]
    assert slack[0].startswith(":x: acme/app@main failed")
    assert "`build`" in slack[0]
    assert slack[1].startswith(":white_check_mark: acme/app@main is back to green")
    landed = [(s["state"], s["target_url"].rsplit("/", 1)[-1]) for s in statuses[2:]]
    assert landed == [
        ("pending", failed["run_id"]),
        ("failure", failed["run_id"]),
        ("pending", fixed["run_id"]),
        ("success", fixed["run_id"]),
    ]
    assert {s["context"] for s in statuses} == {"conveyor/ci"}


def test_hanging_status_api_does_not_hold_up_the_run(live: Live) -> None:
    live.sinks.script("github", hang(10))
    started = time.monotonic()
    final = live.wait(live.trigger()["run_id"])
    assert final["status"] == "success"
    assert time.monotonic() - started < 5
