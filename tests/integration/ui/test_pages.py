"""The web UI's routes over HTTP on a real server: pages carry no data and a strict CSP,
fragments need the read token like the JSON API and escape every value, static files are
package data (they ship in the wheel), `GET /` and `GET /dashboard` still answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from conveyor.model import EventKind, JobRecord, RunRecord, Status
from conveyor.server.ui.pages import CSP, HTMX, STATIC_FILES
from conveyor.store.paths import new_run_id
from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import (
    API_TOKEN,
    PIPELINE,
    Served,
    make_settings,
    serve_app,
)

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
EVIL = '<script>alert("x")</script>'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    remote = GitRepo.create(tmp_path / "remote", {".conveyor.yml": PIPELINE})
    settings = make_settings(remote, public_read=False, max_parallel_runs=0)
    with serve_app(settings, home=tmp_path / "home") as served:
        yield served


def seed(served: Served, *, event: EventKind = EventKind.PUSH, reason: str | None = None) -> str:
    now = datetime.now(UTC)
    run = served.store.create_run(
        RunRecord(
            run_id=new_run_id(now),
            repo="acme/app",
            ref="main",
            sha="c" * 40,
            event=event,
            status=Status.FAILED,
            created_at=now,
            started_at=now,
            finished_at=now,
            reason=reason,
            pipeline_name="ci",
        )
    )
    served.store.save_job(
        run.run_id,
        JobRecord(name=EVIL, stage="test", status=Status.FAILED, attempt=1, reason=EVIL),
    )
    return run.run_id


def test_ui_static_files_are_package_data() -> None:
    static = files("conveyor.server.ui").joinpath("static")
    for name in STATIC_FILES:
        assert static.joinpath(name).read_bytes()
    assert "Zero-Clause BSD" in static.joinpath(HTMX.replace(".min.js", ".LICENSE.txt")).read_text()
    assert files("conveyor.server.ui").joinpath("templates", "base.html").read_text()


def test_ui_pages_carry_a_strict_csp_and_no_inline_script(server: Served) -> None:
    for path in ("/ui/runs", "/ui/monitor", f"/ui/runs/{seed(server)}"):
        answer = httpx.get(server.url(path))
        assert (answer.status_code, answer.headers["content-security-policy"]) == (200, CSP)
        assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
        assert re.findall(r"<script>|<style|\bstyle=|\bon[a-z]+=", answer.text) == []
        assert re.findall(r"(?:src|href)=\"(https?:)?//", answer.text) == []
        assert API_TOKEN not in answer.text


def test_ui_static_file_answers_with_its_type_and_unknown_is_404(server: Served) -> None:
    answer = httpx.get(server.url("/ui/static/ui.js"))
    assert (answer.status_code, answer.headers["content-type"]) == (
        200,
        "text/javascript; charset=utf-8",
    )
    missing = httpx.get(server.url("/ui/static/..%2Fpages.py"))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_ui_fragments_need_the_read_token(server: Served) -> None:
    run_id = seed(server)
    for path in ("/ui/f/runs", f"/ui/f/runs/{run_id}", "/ui/f/monitor"):
        refused = httpx.get(server.url(path))
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")
        assert httpx.get(server.url(path), headers=AUTH).status_code == 200


def test_ui_fragments_escape_job_names_and_reasons(server: Served) -> None:
    run_id = seed(server, reason=EVIL)
    for path in ("/ui/f/runs", f"/ui/f/runs/{run_id}"):
        text = httpx.get(server.url(path), headers=AUTH).text
        assert "<script>" not in text
        assert "&lt;script&gt;" in text


def test_ui_runs_fragment_filters_by_event(server: Served) -> None:
    seed(server, event=EventKind.PUSH)
    tagged = seed(server, event=EventKind.TAG)
    text = httpx.get(server.url("/ui/f/runs?event=tag"), headers=AUTH).text
    assert re.findall(r"/ui/runs/([^\"/]+)\"", text) == [tagged]


def test_ui_unknown_run_is_404_in_the_envelope(server: Served) -> None:
    unknown = "/ui/f/runs/20261123T120000000Z-abcdefgh"
    answer = httpx.get(server.url(unknown), headers=AUTH)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "run_not_found")


def test_ui_root_and_dashboard_still_answer(server: Served) -> None:
    root = httpx.get(server.url("/"))
    assert (root.status_code, root.headers["location"]) == (307, "/ui/runs")
    assert httpx.get(server.url("/dashboard")).status_code == 200
