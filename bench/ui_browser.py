"""The web UI in headless (system) Chromium, timed with Playwright (issue 11's figures):
a run of 500 jobs (10 stages) renders its page — from navigation start until all 500 job
rows are in the DOM — and a 100,000-line log reaches its last line — from navigation start
until the last line is rendered in view and the follow has ended. A real `conveyor serve`
app (uvicorn on loopback, SQLite in a temp home, public reads) over seeded records and a
real JSONL log file. Median of rounds, milliseconds.

    .venv/bin/python bench/ui_browser.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "src"))

import uvicorn
from playwright.sync_api import sync_playwright

from conveyor.model import EventKind, JobRecord, LogRecord, RunRecord, Status, Stream
from conveyor.server.app import create_app
from conveyor.settings import parse_settings
from conveyor.store import open_store
from conveyor.store.logfiles import RunLogs
from conveyor.store.paths import new_run_id, run_dir

JOBS = 500
STAGES = 10
LOG_LINES = 100_000


def seed(home: Path) -> tuple[str, str]:
    store = open_store(home)
    t0 = datetime.now(UTC)
    ids = []
    for index, count in enumerate((JOBS, 1)):
        run_id = new_run_id(t0 + timedelta(seconds=index))
        store.create_run(
            RunRecord(
                run_id, "acme/app", "main", "a" * 40, EventKind.PUSH, Status.SUCCESS,
                created_at=t0, started_at=t0, finished_at=t0 + timedelta(seconds=90),
                pipeline_name="big",
            )
        )  # fmt: skip
        for n in range(count):
            stage = f"stage-{n % STAGES}"
            needs = (f"job-{n - STAGES}",) if n >= STAGES else ()
            store.save_job(
                run_id,
                JobRecord(
                    name=f"job-{n}", stage=stage, status=Status.SUCCESS, attempt=1,
                    started_at=t0, finished_at=t0 + timedelta(seconds=3), needs=needs,
                    worker="local",
                ),
            )  # fmt: skip
        ids.append(run_id)
    logs = RunLogs(run_dir(home, ids[1]))
    step = ""
    batch = []
    for n in range(1, LOG_LINES + 1):
        step = f"step {1 + (n - 1) // 10_000}"
        text = f"\x1b[32mline {n}\x1b[0m of the build output, with some words to search in"
        batch.append(LogRecord(t0, ids[1], "job-0", step, Stream.STDOUT, n, text))
        if len(batch) == 5000:
            logs.write_many(batch)
            batch = []
    logs.close()
    store.close()
    return ids[0], ids[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("bench/ui_browser.py: no chromium on PATH (make chromium)")
    home = Path(tempfile.mkdtemp(prefix="conveyor-bench-ui-")) / "home"
    big_run, log_run = seed(home)
    store = open_store(home)
    settings = parse_settings("[server]\npublic_read = true\nmax_parallel_runs = 0\n", {})
    app = create_app(settings, store=store, env={}, home=home)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    run_ms: list[float] = []
    log_ms: list[float] = []
    end_ms: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            for _ in range(args.rounds):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{base}/ui/runs/{big_run}")
                # Locators, not wait_for_function: the page's CSP forbids eval.
                page.locator("li.job").nth(JOBS - 1).wait_for(state="attached")
                run_ms.append(page.evaluate("performance.now()"))
                page.goto(f"{base}/ui/runs/{log_run}/jobs/job-0/log")
                page.locator(f"#L{LOG_LINES}").wait_for(state="visible")
                log_ms.append(page.evaluate("performance.now()"))
                page.locator("#log[data-ended]").wait_for(state="attached")
                end_ms.append(page.evaluate("performance.now()"))
                page.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()
    print(
        f"run page, {JOBS} jobs: median {statistics.median(run_ms):.0f} ms ({args.rounds} rounds)"
    )
    print(f"log, {LOG_LINES:,} lines, to its last line: median {statistics.median(log_ms):.0f} ms")
    print(
        f"log, {LOG_LINES:,} lines, to the follow's end: median {statistics.median(end_ms):.0f} ms"
    )


if __name__ == "__main__":
    main()
