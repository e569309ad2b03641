"""`GET /dashboard` and `GET /` on a real server: the page, its security headers (the CSP
hashes match the inline blocks, computed here independently), no resource from another host,
and the page's script run under Node (when Node is on PATH): its pure data shaping, and the
whole page against the real server through a fake DOM (token form on 401, Bearer header,
refresh, failure kept on screen, pause while hidden)."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import conveyor.server
from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.store.paths import new_run_id
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app

PAGE_FILE = Path(conveyor.server.__file__).parent / "dashboard.html"
HARNESS = Path(__file__).parent / "dashboard_harness.js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None, reason="Node.js is not on PATH: the page's script cannot be run"
)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def server(tmp_path: Path, remote: GitRepo) -> Iterator[Served]:
    # max_parallel_runs = 0: seeded runs stay as seeded (no worker picks them up).
    settings = make_settings(remote, public_read=False, max_parallel_runs=0)
    with serve_app(settings, home=tmp_path / "home") as served:
        yield served


def inline_blocks(page: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp_directives(header: str) -> dict[str, list[str]]:
    parts = [part.split() for part in header.split(";")]
    return {part[0]: part[1:] for part in parts if part}


def seed_run(served: Served, minutes: int, status: Status, jobs: dict[str, Status]) -> str:
    created = T0 + timedelta(minutes=minutes)
    run = served.store.create_run(
        RunRecord(
            run_id=new_run_id(created),
            repo="acme/app",
            ref="main",
            sha="b" * 40,
            event=EventKind.PUSH,
            status=status,
            created_at=created,
            started_at=created,
            finished_at=created + timedelta(seconds=75) if status.is_final else None,
            pipeline_name="ci",
        )
    )
    for name, job_status in jobs.items():
        served.store.save_job(
            run.run_id, JobRecord(name=name, stage="test", status=job_status, attempt=1)
        )
    return run.run_id


def test_dashboard_is_served_without_a_token_with_security_headers(server: Served) -> None:
    response = httpx.get(server.url("/dashboard"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    csp = csp_directives(response.headers["content-security-policy"])
    page = response.text
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'", *map(sha256_source, inline_blocks(page, "script"))]
    assert csp["style-src"] == ["'self'", *map(sha256_source, inline_blocks(page, "style"))]
    assert len(csp["script-src"]) == len(csp["style-src"]) == 2
    assert csp["connect-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert (csp["base-uri"], csp["frame-ancestors"]) == (["'none'"], ["'none'"])
    assert page == PAGE_FILE.read_text(encoding="utf-8")
    assert "\r" not in page  # a browser hashes inline blocks after turning CR LF into LF


def test_dashboard_page_loads_nothing_from_another_host(server: Served) -> None:
    page = httpx.get(server.url("/dashboard")).text
    assert re.findall(r"https?://|//[a-z0-9.-]+\.[a-z]", page, flags=re.IGNORECASE) == []
    assert re.findall(r"\b(?:src|href|action)\s*=\s*\"([^\"]*)\"", page) == ["data:,"]
    assert "<iframe" not in page
    assert "<img" not in page


def test_root_redirects_to_the_web_ui_runs_page_with_307(server: Served) -> None:
    response = httpx.get(server.url("/"))
    assert (response.status_code, response.headers["location"]) == (307, "/ui/runs")


def test_guard_page_script_has_no_html_injection_sink() -> None:
    """A guard over the file, not a behaviour: the script writes values only through
    textContent and element properties, never through an API that parses HTML or code."""
    script = "".join(inline_blocks(PAGE_FILE.read_text(encoding="utf-8"), "script"))
    sinks = r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\b|new Function"
    sinks += r"|setAttribute|\.src\b|location\s*="
    assert re.findall(sinks, script) == []
    assert script.isascii()  # the CSP hash is over UTF-8; ASCII removes any doubt


def run_node(*args: str, stdin: bytes = b"") -> Any:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(HARNESS), *args], input=stdin, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return orjson.loads(done.stdout)


@needs_node
def test_page_script_shapes_pipelines_and_runs_safely() -> None:
    now_ms = int(T0.timestamp() * 1000)
    entry = {
        "key": "group/app@main",
        "provider": "gitlab",
        "repo": "group/app",
        "branch": "main",
        "pipelines": [
            {
                "id": 7,
                "status": "failed",
                "ref": "main",
                "sha": "1be5db59cc4fe157b1b43b8b9efd6b8a9412b9c3",
                "web_url": "https://gitlab.example.com/group/app/-/pipelines/7",
                "created_at": "2026-11-23T11:57:00.000Z",
                "updated_at": "2026-11-23T11:58:00.000Z",
                "duration_s": 83.0,
            }
        ],
        "fetched_at": "2026-11-23T11:59:30.000Z",
        "stale": True,
        "error": "upstream 502",
    }
    hostile = {
        **entry,
        "key": "<b>x</b>@main",
        "pipelines": [
            {**entry["pipelines"][0], "status": "<img src=x>", "web_url": "javascript:alert(1)"}
        ],
        "stale": False,
    }
    empty = {**entry, "key": "jenkins/job@main", "pipelines": [], "stale": False}
    live = {"run_id": "r-live", "number": 3, "status": "running", "finished_at": None}
    done = {"run_id": "r-done", "number": 2, "status": "success", "finished_at": "f1"}
    # Played again after it ended (a manual job): the list shows a change the cache lacks.
    resumed = {"run_id": "r-resumed", "number": 1, "status": "failed", "finished_at": "f0"}
    ended_again = {"run_id": "r-ended", "number": 0, "status": "success", "finished_at": "f9"}
    page = {"runs": [live, done, resumed, ended_again]}
    records = [
        {**done, "jobs": [{"name": "build", "status": "success"}]},
        {**resumed, "status": "success", "jobs": []},
        {**ended_again, "finished_at": "f8", "jobs": []},
    ]
    report = run_node(
        "shape",
        str(PAGE_FILE),
        stdin=orjson.dumps(
            {
                "now_ms": now_ms,
                "entries": [entry, hostile, empty],
                "page": page,
                "records": records,
                "durations": [0.41, 59.6, 83, 7384, None, -1],
                "ages": ["2026-11-23T11:59:58Z", "2026-11-23T10:00:00Z", "nonsense", None],
                "urls": ["http://a.example/x", "HTTPS://b.example", "//evil.example", "data:x"],
                "statuses": ["manual", "exploded", "s-success x"],
            }
        ),
    )
    first, second, third = report["pipelines"]
    assert {k: first[k] for k in ("target", "status", "badge", "sha", "age", "duration")} == {
        "target": "group/app@main",
        "status": "failed",
        "badge": "badge s-failed",
        "sha": "1be5db59",
        "age": "3m ago",
        "duration": "1m 23s",
    }
    assert (first["url"], first["stale"], first["error"]) == (
        "https://gitlab.example.com/group/app/-/pipelines/7",
        True,
        "upstream 502",
    )
    assert (second["badge"], second["url"], second["error"]) == ("badge s-unknown", None, "")
    assert (third["status"], third["badge"], third["url"]) == ("no pipelines", "badge s-none", None)
    assert [run["jobs"] for run in report["runs"]] == [
        [],
        [{"name": "build", "status": "success", "badge": "badge s-success"}],
        [],
        [],
    ]
    assert report["runs"][1]["number"] == "#2"
    assert report["toFetch"] == ["r-live", "r-resumed", "r-ended"]
    assert report["durations"] == ["0.4s", "1m 0s", "1m 23s", "2h 3m", "", ""]
    assert report["ages"] == ["2s ago", "2h ago", "", ""]
    assert report["urls"] == ["http://a.example/x", "HTTPS://b.example", None, None]
    assert report["badges"] == ["badge s-manual", "badge s-unknown", "badge s-unknown"]


def texts(node: dict[str, Any]) -> list[str]:
    """Every non-empty text in a fake-DOM tree, in document order."""
    found = [node["text"]] if node["text"] else []
    for child in node["children"]:
        found += texts(child)
    return found


def classes(node: dict[str, Any]) -> list[str]:
    found = [node["className"]] if node["className"].startswith("badge") else []
    for child in node["children"]:
        found += classes(child)
    return found


@needs_node
def test_page_asks_for_the_token_then_shows_runs_and_keeps_them_on_failure(
    server: Served,
) -> None:
    done = seed_run(server, 0, Status.FAILED, {"build": Status.SUCCESS, "<i>t</i>": Status.FAILED})
    live = seed_run(server, 1, Status.RUNNING, {"lint": Status.RUNNING})
    report = run_node("browse", server.base_url, API_TOKEN)

    first = report["first"]
    assert [call["authorization"] for call in first["sent"]] == [None, None]
    assert (first["authHidden"], first["refreshTimers"]) == (False, 0)
    assert "Bearer" in first["reason"]

    after = report["afterToken"]
    assert (after["prevented"], after["authHidden"], after["inputValue"]) == (True, True, "")
    assert after["stored"] == API_TOKEN
    bearer = f"Bearer {API_TOKEN}"
    assert {call["authorization"] for call in after["sent"]} == {bearer}
    urls = sorted(call["url"].removeprefix(server.base_url) for call in after["sent"])
    assert urls == sorted(
        [
            "/api/v1/pipelines",
            "/api/v1/runs?limit=20",
            f"/api/v1/runs/{done}",
            f"/api/v1/runs/{live}",
        ]
    )
    assert after["refreshClass"] == ""
    assert after["refresh"].startswith("Updated ")
    assert texts(after["pipelines"]) == [
        "No watched pipelines (add [[monitor.targets]] to conveyor.toml)."
    ]
    rows = after["runs"]["children"]
    assert [texts(row)[:6] for row in rows] == [
        ["#2", "running", "acme/app", "main", "push", texts(rows[0])[5]],
        ["#1", "failed", "acme/app", "main", "push", texts(rows[1])[5]],
    ]
    assert texts(rows[1])[-3:] == ["1m 15s", "build", "<i>t</i>"]
    assert classes(rows[1]) == ["badge s-failed", "badge s-success", "badge s-failed"]
    assert classes(rows[0]) == ["badge s-running", "badge s-running"]
    assert after["refreshTimers"] == 1

    failed = report["failed"]
    assert failed["refreshClass"] == "failed"
    assert failed["refresh"].startswith("Last refresh failed at ")
    assert "fetch failed (showing data from " in failed["refresh"]
    assert (failed["runs"], failed["keptLastOk"]) == (after["runs"], True)
    assert failed["refreshTimers"] == 1

    assert report["hidden"] == {"refreshTimers": 0, "sent": 0}
    again = report["visibleAgain"]
    assert again["refreshTimers"] == 1
    assert sorted(call["url"].removeprefix(server.base_url) for call in again["sent"]) == [
        "/api/v1/pipelines",
        "/api/v1/runs/" + live,  # a finished run's jobs are not fetched again
        "/api/v1/runs?limit=20",
    ]
    assert report["revoked"] == {"authHidden": False, "stored": None, "refreshTimers": 0}
    every_url = [c["url"] for part in ("first", "afterToken") for c in report[part]["sent"]]
    assert all(API_TOKEN not in url for url in every_url + [c["url"] for c in again["sent"]])
