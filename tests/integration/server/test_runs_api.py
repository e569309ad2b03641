"""The runs API on a real uvicorn (127.0.0.1, port 0) with create_app and a real SQLite store:
reads, filters and paging, the error envelope (401, 404, 409, 422), job logs as JSONL with
matrix and slash names in the path, and SSE follow until the job ends."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from conveyor.model import EventKind, JobRecord, LogRecord, RunRecord, Status, Stream
from conveyor.records import log_to_dict, run_to_dict
from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.logfiles import RunLogs
from conveyor.store.paths import new_run_id, run_dir
from conveyor.store.sql import SqlRunStore

TOKEN = "runs-api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MATRIX_JOB = "test [PY=3.12]"
SLASH_JOB = "deploy/prod eu"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = """
[server]
api_token_env = "CONVEYOR_API_TOKEN"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "{clone_url}"
secret_env = "ACME_HOOK_SECRET"
"""


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """uvicorn in a thread on 127.0.0.1:0; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Live:
    client: httpx.Client
    store: SqlRunStore
    home: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    home = tmp_path / "home"
    store = open_store(home)
    env = {
        **os.environ,
        "CONVEYOR_API_TOKEN": TOKEN,
        "ACME_HOOK_SECRET": "hook-secret-0123456789abcdef",
    }
    settings = parse_settings(SETTINGS.format(clone_url=tmp_path / "nowhere"), env)
    app = create_app(settings, store=store, env=env, home=home)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Live(client, store, home)
    store.close()


def seed_run(
    live: Live,
    *,
    status: Status = Status.SUCCESS,
    ref: str = "main",
    minutes: int = 0,
    jobs: tuple[tuple[str, Status], ...] = (
        ("build", Status.SUCCESS),
        (MATRIX_JOB, Status.SUCCESS),
    ),
) -> RunRecord:
    created = T0 + timedelta(minutes=minutes)
    run = live.store.create_run(
        RunRecord(
            run_id=new_run_id(created),
            repo="acme/app",
            ref=ref,
            sha="a" * 40,
            event=EventKind.PUSH,
            status=status,
            created_at=created,
            started_at=created,
            finished_at=created + timedelta(seconds=5) if status.is_final else None,
            pipeline_name="ci",
        )
    )
    for name, job_status in jobs:
        live.store.save_job(
            run.run_id, JobRecord(name=name, stage="test", status=job_status, attempt=1)
        )
    return run


def write_lines(live: Live, run_id: str, job: str, first: int, count: int) -> list[LogRecord]:
    records = [
        LogRecord(T0, run_id, job, "step", Stream.STDOUT, n, f"line {n} of {job}")
        for n in range(first, first + count)
    ]
    logs = RunLogs(run_dir(live.home, run_id))
    for record in records:
        logs.write_many([record])
    logs.close()
    return records


def job_url(run_id: str, job: str, tail: str) -> str:
    return f"/api/v1/runs/{run_id}/jobs/{quote(job, safe='')}/{tail}"


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], bool(error["message"]), bool(error["request_id"])) == (code, True, True)
    return error


def test_get_run_returns_the_run_record(live: Live) -> None:
    run = seed_run(live)
    response = live.client.get(f"/api/v1/runs/{run.run_id}", headers=AUTH)
    stored = live.store.get_run(run.run_id)
    assert stored is not None
    assert (response.status_code, response.json()) == (200, run_to_dict(stored))
    assert [j["name"] for j in response.json()["jobs"]] == ["build", MATRIX_JOB]


def test_read_without_token_is_401_envelope(live: Live) -> None:
    run = seed_run(live)
    assert_envelope(live.client.get(f"/api/v1/runs/{run.run_id}"), 401, "unauthorized")


def test_unknown_run_is_404_envelope(live: Live) -> None:
    error = assert_envelope(
        live.client.get("/api/v1/runs/nope-123", headers=AUTH), 404, "run_not_found"
    )
    assert "nope-123" in error["message"]


def test_list_runs_newest_first_with_filters_and_paging(live: Live) -> None:
    old = seed_run(live, minutes=1)
    failed = seed_run(live, minutes=2, status=Status.FAILED)
    seed_run(live, minutes=3, ref="dev")
    newest_main = live.client.get("/api/v1/runs", params={"ref": "main"}, headers=AUTH).json()
    assert [r["run_id"] for r in newest_main["runs"]] == [failed.run_id, old.run_id]
    only_failed = live.client.get("/api/v1/runs", params={"status": "failed"}, headers=AUTH).json()
    assert [r["run_id"] for r in only_failed["runs"]] == [failed.run_id]
    page = live.client.get("/api/v1/runs", params={"limit": 2, "offset": 0}, headers=AUTH).json()
    last = live.client.get("/api/v1/runs", params={"limit": 2, "offset": 2}, headers=AUTH).json()
    assert (len(page["runs"]), page["next_offset"], len(last["runs"]), last["next_offset"]) == (
        2,
        2,
        1,
        None,
    )


def test_list_runs_rejects_unknown_status_with_422_envelope(live: Live) -> None:
    response = live.client.get("/api/v1/runs", params={"status": "exploded"}, headers=AUTH)
    assert_envelope(response, 422, "invalid_request")


def test_job_log_is_jsonl_for_matrix_and_slash_names(live: Live) -> None:
    run = seed_run(live, jobs=((MATRIX_JOB, Status.SUCCESS), (SLASH_JOB, Status.SUCCESS)))
    matrix = write_lines(live, run.run_id, MATRIX_JOB, 1, 3)
    slash = write_lines(live, run.run_id, SLASH_JOB, 1, 2)
    for job, records in ((MATRIX_JOB, matrix), (SLASH_JOB, slash)):
        response = live.client.get(job_url(run.run_id, job, "log"), headers=AUTH)
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [orjson.loads(line) for line in response.content.splitlines()]
        assert lines == [log_to_dict(r) for r in records]
    literal = live.client.get(f"/api/v1/runs/{run.run_id}/jobs/deploy/prod eu/log", headers=AUTH)
    assert literal.content.count(b"\n") == len(slash)


def test_unknown_job_is_404_with_did_you_mean(live: Live) -> None:
    run = seed_run(live)
    response = live.client.get(job_url(run.run_id, "test [PY=3.21]", "log"), headers=AUTH)
    error = assert_envelope(response, 404, "job_not_found")
    assert MATRIX_JOB in error["message"]


def test_writes_without_token_are_401_envelope(live: Live) -> None:
    run = seed_run(live, status=Status.RUNNING)
    assert_envelope(
        live.client.post("/api/v1/runs", json={"repo": "acme/app", "ref": "main"}),
        401,
        "unauthorized",
    )
    assert_envelope(live.client.post(f"/api/v1/runs/{run.run_id}/cancel"), 401, "unauthorized")
    assert_envelope(live.client.post(job_url(run.run_id, "build", "play")), 401, "unauthorized")
    assert live.store.get_run(run.run_id).status is Status.RUNNING  # type: ignore[union-attr]


def test_trigger_body_is_validated_with_422_envelope(live: Live) -> None:
    bad = {"repo": "acme/app", "ref": "main", "sha": "not-a-sha", "variables": {"1X": "v"}}
    assert_envelope(
        live.client.post("/api/v1/runs", json=bad, headers=AUTH), 422, "invalid_request"
    )


def test_trigger_unknown_repo_is_404_envelope(live: Live) -> None:
    body = {"repo": "acme/unknown", "ref": "main", "sha": "b" * 40}
    assert_envelope(live.client.post("/api/v1/runs", json=body, headers=AUTH), 404, "unknown_repo")


def test_cancel_finished_run_is_409_envelope(live: Live) -> None:
    run = seed_run(live, status=Status.SUCCESS)
    response = live.client.post(f"/api/v1/runs/{run.run_id}/cancel", headers=AUTH)
    assert_envelope(response, 409, "run_finished")


def test_play_of_a_job_that_is_not_manual_is_409_envelope(live: Live) -> None:
    run = seed_run(live, status=Status.RUNNING)
    response = live.client.post(job_url(run.run_id, MATRIX_JOB, "play"), headers=AUTH)
    assert_envelope(response, 409, "job_not_manual")


def read_events(response: httpx.Response) -> list[tuple[str, str, str]]:
    """(event, id, data) of each SSE event until the stream closes."""
    events: list[tuple[str, str, str]] = []
    event, event_id, data = "message", "", ""
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                events.append((event, event_id, data))
            event, event_id, data = "message", "", ""
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            event = value
        elif field == "id":
            event_id = value
        elif field == "data":
            data = value
    return events


def test_follow_streams_sse_until_the_job_ends(live: Live) -> None:
    run = seed_run(live, status=Status.RUNNING, jobs=((MATRIX_JOB, Status.RUNNING),))
    first = write_lines(live, run.run_id, MATRIX_JOB, 1, 2)

    def finish_later() -> None:
        time.sleep(0.4)
        write_lines(live, run.run_id, MATRIX_JOB, 3, 2)
        job = JobRecord(name=MATRIX_JOB, stage="test", status=Status.SUCCESS, attempt=1)
        live.store.save_job(run.run_id, job)

    writer = threading.Thread(target=finish_later)
    writer.start()
    url = job_url(run.run_id, MATRIX_JOB, "log")
    with live.client.stream("GET", url, params={"follow": "1"}, headers=AUTH) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response)
    writer.join()
    lines = [orjson.loads(data) for kind, _, data in events if kind == "message"]
    assert [line["n"] for line in lines] == [1, 2, 3, 4]
    assert lines[:2] == [log_to_dict(r) for r in first]
    assert [e[1] for e in events[:4]] == ["1", "2", "3", "4"]
    assert events[-1][0] == "end"
    assert orjson.loads(events[-1][2]) == {"job": MATRIX_JOB, "status": "success"}


def test_follow_resumes_after_last_event_id(live: Live) -> None:
    run = seed_run(live, jobs=((SLASH_JOB, Status.FAILED),))
    write_lines(live, run.run_id, SLASH_JOB, 1, 5)
    headers = {**AUTH, "Last-Event-ID": "3"}
    url = job_url(run.run_id, SLASH_JOB, "log")
    with live.client.stream("GET", url, params={"follow": "1"}, headers=headers) as response:
        events = read_events(response)
    assert [e[1] for e in events] == ["4", "5", ""]
    assert orjson.loads(events[-1][2])["status"] == "failed"


def test_follow_goes_on_from_the_offset_the_jsonl_answer_ended_at(live: Live) -> None:
    run = seed_run(live, jobs=((SLASH_JOB, Status.FAILED),))
    write_lines(live, run.run_id, SLASH_JOB, 1, 3)
    url = job_url(run.run_id, SLASH_JOB, "log")
    read = live.client.get(url, headers=AUTH)
    offset = read.headers["X-Log-Offset"]
    assert int(offset) == len(read.content)
    write_lines(live, run.run_id, SLASH_JOB, 4, 2)
    params = {"follow": "1", "offset": offset}
    with live.client.stream("GET", url, params=params, headers=AUTH) as response:
        events = read_events(response)
    assert [e[1] for e in events] == ["4", "5", ""]


def test_follow_with_a_non_ascii_digit_last_event_id_starts_over(live: Live) -> None:
    # "²" is a digit to str.isdigit() but not to int(): it must not answer 500.
    run = seed_run(live, jobs=((SLASH_JOB, Status.FAILED),))
    write_lines(live, run.run_id, SLASH_JOB, 1, 2)
    headers: dict[str, str | bytes] = {**AUTH, "Last-Event-ID": "\u00b2".encode("latin-1")}
    url = job_url(run.run_id, SLASH_JOB, "log")
    with live.client.stream("GET", url, params={"follow": "1"}, headers=headers) as response:
        assert response.status_code == 200
        events = read_events(response)
    assert [e[1] for e in events] == ["1", "2", ""]


def test_follow_of_a_finished_run_ends_even_without_the_job_record(live: Live) -> None:
    run = seed_run(live, status=Status.CANCELED, jobs=())
    write_lines(live, run.run_id, "build", 1, 1)
    url = job_url(run.run_id, "build", "log")
    with live.client.stream("GET", url, params={"follow": "1"}, headers=AUTH) as response:
        events = read_events(response)
    assert [e[0] for e in events] == ["message", "end"]
    assert orjson.loads(events[-1][2])["status"] == "canceled"


def test_run_record_roundtrip_keeps_job_order(live: Live) -> None:
    run = seed_run(live, jobs=(("z", Status.SUCCESS), ("a", Status.FAILED)))
    body = live.client.get(f"/api/v1/runs/{run.run_id}", headers=AUTH).json()
    assert [j["name"] for j in body["jobs"]] == ["z", "a"]
