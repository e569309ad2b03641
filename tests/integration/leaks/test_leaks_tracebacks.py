"""Malformed input never reaches a user as a traceback: every CLI command given bad run ids,
job names with `../`, a pipeline file that is not UTF-8, a YAML alias bomb (refused fast,
never expanded), a file nested too deep, a 50 MB file, a directory named `.conveyor.yml`,
answers with one clean line and exit 2; every route given bad ids answers the error
envelope.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.leaks.scan import conveyor, env_for
from tests.integration.server.conftest import API_TOKEN, make_settings, serve_app

BOMB = "\n".join(
    [
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"l{d}: &l{d} [{', '.join([f'*l{d - 1}'] * 9)}]" for d in range(1, 9)),
        "job:\n  script: echo",
        "",
    ]
)


def _clean_refusal(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == 2, done.stderr
    return str(done.stderr)


@pytest.mark.parametrize("name", [".conveyor.yml", ".gitlab-ci.yml"])
def test_leaks_tracebacks_alias_bomb_refused_fast(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(BOMB if "gitlab" in name else BOMB + "name: x\n")
    started = time.monotonic()
    for command in ("validate", "plan", "run"):
        said = _clean_refusal(conveyor(tmp_path, command, env=env_for(tmp_path / ".home")))
        assert "alias bomb" in said
    assert time.monotonic() - started < 30  # unguarded, one command takes minutes and GiBs


@pytest.mark.parametrize(
    "text",
    [
        b"name: x\njobs:\n  a:\n    run: echo \xff\xfe\n",  # not UTF-8
        b"name: x\njobs:\n  a:\n    run: " + b"[" * 5000 + b"]" * 5000 + b"\n",  # too deep
        b"name: x\njobs:\n" + b"  j:\n    run: echo " + b"x" * (50 * 1024 * 1024) + b"\n",
    ],
    ids=["not-utf8", "deep", "50MB"],
)
def test_leaks_tracebacks_bad_pipeline_file(tmp_path: Path, text: bytes) -> None:
    for name in (".conveyor.yml", ".gitlab-ci.yml"):
        folder = tmp_path / name.strip(".")
        folder.mkdir()
        (folder / name).write_bytes(text)
        for command in ("validate", "run"):
            _clean_refusal(conveyor(folder, command, env=env_for(tmp_path / ".home")))


def test_leaks_tracebacks_pipeline_file_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").mkdir()
    env = env_for(tmp_path / ".home")
    for args in (["validate"], ["run"], ["plan"], ["validate", "-f", ".conveyor.yml"]):
        _clean_refusal(conveyor(tmp_path, *args, env=env))


def test_leaks_tracebacks_bad_run_ids_and_job_names(tmp_path: Path) -> None:
    (tmp_path / ".conveyor.yml").write_text("name: x\njobs:\n  a:\n    run: echo hi\n")
    env = env_for(tmp_path / ".home")
    run_id = json.loads(conveyor(tmp_path, "run", "--json", env=env).stdout)["run_id"]
    bad_ids = ["../../etc", "..", "", "a\udcff", "%00", "x" * 5000]
    calls = [["show", bad] for bad in bad_ids] + [["logs", bad] for bad in bad_ids]
    calls += [["cancel", bad] for bad in bad_ids] + [["play", bad, "a"] for bad in bad_ids]
    for job in ("../logs/a", "../../../conveyor.db", "a/../a", "\udcff", ""):
        calls += [["logs", run_id, job], ["play", run_id, job]]
    for call in calls:
        _clean_refusal(conveyor(tmp_path, *call, env=env))


def test_leaks_tracebacks_routes_answer_the_envelope(tmp_path: Path) -> None:
    remote = GitRepo.create(
        tmp_path / "remote", {".conveyor.yml": "name: x\njobs: {a: {run: echo}}\n"}
    )
    bearer = {"authorization": f"Bearer {API_TOKEN}"}
    with serve_app(make_settings(remote), home=tmp_path / "home") as server:
        answers = [
            httpx.get(server.url(path), headers=bearer)
            for path in (
                "/api/v1/runs/..%2F..%2Fetc",
                "/api/v1/runs/%00",
                "/api/v1/runs/" + "x" * 5000,
                "/api/v1/runs/nope/jobs/..%2F..%2Fconveyor.db/log",
                "/api/v1/runs/nope/jobs/%FF/log?follow=1",
                "/api/v1/runs?limit=-1",
                "/api/v1/runs?limit=abc",
                "/api/v1/pipelines/..%2F@%FF",
            )
        ]
        answers += [
            httpx.post(server.url("/api/v1/runs"), headers=bearer, content=body)
            for body in (b"\xff\xfe", b"{", b"[]", b'{"repo": 5}', b'{"repo": "../x"}')
        ]
        answers += [
            httpx.post(server.url("/webhooks/github"), content=b"\xff", headers=headers)
            for headers in ({}, {"x-github-event": "push", "x-hub-signature-256": "sha256=zz"})
        ]
        answers.append(httpx.post(server.url("/api/v1/runs/nope/cancel"), headers=bearer))
    for answer in answers:
        assert answer.status_code >= 400, answer.request.url
        error = answer.json()["error"]
        assert {"code", "message", "request_id"} <= set(error), answer.text
        assert "Traceback" not in answer.text
