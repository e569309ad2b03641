"""The web UI in a real (system) Chromium against a real conveyor server with real runs:
open a failed run from the list, read the failing step's log, follow a live log to its
end, play a manual job, cancel a long run, retry a failed job in its run, deep link to a
log line, keyboard navigation,
no serious/critical axe-core violation and no CSP violation on any page. Screenshots of
each page go to docs/ui/ (docs/ui.md shows them)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.git_repos import GitRepo
from tests.integration.server.conftest import API_TOKEN, Served, make_settings, serve_app
from tests.integration.ui.conftest import SCREENSHOTS, playwright_sync

expect = playwright_sync.expect
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
UI_PIPELINE = """\
name: ui
stages: [build, test, release]
jobs:
  build:
    stage: build
    steps:
      - name: compile
        run: |
          for i in $(seq 1 40); do echo "compile line $i"; done
          printf '\\033[32mgreen ok\\033[0m\\n'
          if [ "$FOLLOW" = 1 ]; then
            for i in $(seq 1 30); do echo "live line $i"; sleep 0.05; done
          fi
          if [ "$LONG" = 1 ]; then sleep 60; fi
      - name: package
        run: echo packaged
  unit:
    stage: test
    needs: [build]
    steps:
      - name: prepare
        run: echo preparing
      - name: check
        run: |
          echo checking
          if [ -n "$MARKER" ] && [ -e "$MARKER" ]; then echo "fixed"; exit 0; fi
          if [ -n "$MARKER" ]; then touch "$MARKER"; fi
          echo "AssertionError: expected 2, got 3"
          exit 1
  deploy:
    stage: release
    needs: [build]
    manual: true
    allow_failure: true
    run: echo deployed
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("ui")
    remote = GitRepo.create(tmp / "remote", {".conveyor.yml": UI_PIPELINE})
    # Unsandboxed: the retried job reads the marker file it left in tmp_path on its first
    # try, which a sandbox's private /tmp would hide.
    settings = make_settings(remote, sandbox="none", public_read=False, max_parallel_runs=2)
    with serve_app(settings, home=tmp / "home") as served:
        yield served


@pytest.fixture(scope="module")
def failed_run(server: Served) -> str:
    return trigger(server, wait=True)


@pytest.fixture
def page(browser: Any, server: Served) -> Iterator[Any]:
    """A fresh tab with the token in its sessionStorage; fails the test on a CSP
    violation or a script error."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    context.add_init_script(f"sessionStorage.setItem('conveyor.token', '{API_TOKEN}')")
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error"
            else None
        ),
    )
    yield tab
    context.close()
    assert problems == []


def trigger(server: Served, *, wait: bool, **variables: str) -> str:
    answer = httpx.post(
        server.url("/api/v1/runs"),
        json={"repo": "acme/app", "ref": "main", "variables": variables},
        headers=AUTH,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    if wait:
        server.wait_for_run(run_id)
    return run_id


def check_accessibility(tab: Any, axe_source: str) -> None:
    tab.evaluate(axe_source)  # through the DevTools protocol: the page's CSP still holds
    results = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def screenshot(tab: Any, name: str) -> None:
    """The page as a PNG: into docs/ui/ with CONVEYOR_UI_SCREENSHOTS=1 (so a test run leaves
    the work tree as it was), else into the test's own memory (the capture still runs)."""
    if os.environ.get("CONVEYOR_UI_SCREENSHOTS") != "1":
        assert tab.screenshot()  # the page renders to an image
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_ui_opens_failed_run_from_the_list_and_reads_the_failing_log(
    browser: Any, server: Served, failed_run: str, axe_source: str
) -> None:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    try:
        tab.goto("/")
        # No token yet: the fragment's 401 asks for it; it never goes into the URL.
        tab.get_by_label("This server needs the API token").fill(API_TOKEN)
        tab.get_by_role("button", name="Use token").click()
        row = tab.locator("table.runs tbody tr", has_text="failed").first
        expect(row).to_contain_text("acme/app")
        assert API_TOKEN not in tab.url
        check_accessibility(tab, axe_source)
        screenshot(tab, "runs")
        row.get_by_role("link", name=re.compile(r"#\d+ ui")).click()
        expect(tab).to_have_url(re.compile(rf"/ui/runs/{failed_run}$"))
        unit = tab.locator("li.job", has_text="unit")
        expect(unit).to_contain_text("✖ failed")
        expect(unit).to_contain_text("needs build")
        expect(tab.locator("li.job", has_text="deploy")).to_contain_text("manual")
        # The graph: a box per job (icon and name; status in its name), `needs` as curves.
        graph = tab.get_by_role("group", name="Jobs by stage, with their needs")
        expect(graph.get_by_role("link", name="unit: failed")).to_contain_text("✖ unit")
        edges = graph.locator(".edges path")
        expect(edges).to_have_count(2)
        assert sorted(
            (path.get_attribute("data-need"), path.get_attribute("data-job"))
            for path in edges.all()
        ) == [("build", "deploy"), ("build", "unit")]
        check_accessibility(tab, axe_source)
        screenshot(tab, "run")
        unit.get_by_role("link", name="unit").click()
        expect(tab.locator("#log-state")).to_contain_text("Job ended: failed")
        expect(tab.locator(".log-view")).to_contain_text("AssertionError: expected 2, got 3")
        check_accessibility(tab, axe_source)
        screenshot(tab, "log")
    finally:
        context.close()


def test_ui_log_renders_ansi_colours_as_classes_not_markup(page: Any, failed_run: str) -> None:
    page.goto(f"/ui/runs/{failed_run}/jobs/build/log")
    green = page.locator(".log-view .ansi-fg32")
    expect(green).to_have_text("green ok")
    expect(page.locator(".log-view")).not_to_contain_text("[32m")


def test_ui_log_follows_a_live_job_to_its_end(page: Any, server: Served) -> None:
    run_id = trigger(server, wait=False, FOLLOW="1")
    page.goto(f"/ui/runs/{run_id}/jobs/build/log")
    expect(page.locator("#log-state")).to_contain_text("Following", timeout=10_000)
    expect(page.locator("#log-state")).to_contain_text("Job ended: success", timeout=20_000)
    # Followed to the bottom: the last line is rendered and in view.
    expect(page.locator(".log-view .row", has_text="packaged")).to_be_in_viewport()
    assert page.locator("#L1").count() == 0  # only the visible rows are in the DOM
    server.wait_for_run(run_id)


def test_ui_plays_a_manual_job_and_sees_it_run(page: Any, server: Served) -> None:
    run_id = trigger(server, wait=True)
    page.goto(f"/ui/runs/{run_id}")
    deploy = page.locator("li.job", has_text="deploy")
    expect(deploy).to_contain_text("⚙ manual")
    deploy.get_by_role("button", name="Play deploy").click()
    expect(deploy).to_contain_text("✔ success", timeout=20_000)
    assert server.wait_for_run(run_id).jobs[-1].status == "success"


def test_ui_cancels_a_long_run_and_sees_it_canceled(page: Any, server: Served) -> None:
    run_id = trigger(server, wait=False, LONG="1")
    page.goto(f"/ui/runs/{run_id}")
    expect(page.locator("#job-build")).to_contain_text("running", timeout=15_000)
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("h1 .badge")).to_contain_text("⊘ canceled", timeout=15_000)
    assert server.wait_for_run(run_id).status == "canceled"


def test_ui_retries_a_failed_run_as_a_new_run(page: Any, server: Served, failed_run: str) -> None:
    page.goto(f"/ui/runs/{failed_run}")
    page.get_by_role("button", name="Retry run").click()
    expect(page).not_to_have_url(re.compile(rf"/ui/runs/{failed_run}$"))
    new_run = page.url.rsplit("/", 1)[-1]
    expect(page.locator("li.job", has_text="unit")).to_contain_text("✖ failed", timeout=20_000)
    assert server.wait_for_run(new_run).sha == server.store.get_run(failed_run).sha


def test_ui_retries_a_failed_job_in_its_run_and_the_run_turns_green(
    page: Any, server: Served, tmp_path: Path
) -> None:
    run_id = trigger(server, wait=True, MARKER=str(tmp_path / "marker"))
    page.goto(f"/ui/runs/{run_id}")
    unit = page.locator("li.job", has_text="unit")
    expect(unit).to_contain_text("✖ failed")
    expect(page.locator("h1 .badge")).to_contain_text("✖ failed")
    unit.get_by_role("button", name="Retry unit").click()
    expect(page.locator("h1 .badge")).to_contain_text("✔ success", timeout=20_000)
    expect(unit).to_contain_text("✔ success")
    expect(unit).to_contain_text("attempt 2")
    expect(page).to_have_url(re.compile(rf"/ui/runs/{run_id}$"))  # the same run
    assert server.wait_for_run(run_id).status == "success"


def test_ui_deep_link_scrolls_to_and_marks_the_log_line(page: Any, failed_run: str) -> None:
    page.goto(f"/ui/runs/{failed_run}/jobs/build/log#L25")
    line = page.locator("#L25")
    expect(line).to_have_class(re.compile(r"\btarget\b"))
    expect(line).to_be_in_viewport()
    expect(line).to_contain_text("compile line 25")
    line.get_by_role("link", name="25").click()
    expect(page).to_have_url(re.compile(r"#L25$"))


def test_ui_log_search_and_collapsible_steps(page: Any, failed_run: str) -> None:
    page.goto(f"/ui/runs/{failed_run}/jobs/build/log")
    expect(page.locator("#log-state")).to_contain_text("Job ended")
    page.get_by_label("Search").fill("compile line 3")
    expect(page.locator("#log-matches")).to_have_text("match 1 of 11")
    expect(page.locator(".row.match")).to_contain_text("compile line 3")
    page.get_by_role("button", name="▾ compile").click()
    expect(page.get_by_role("button", name="▸ compile")).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".log-view")).not_to_contain_text("compile line 1")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "compile line 40\ngreen ok\n" in text


def test_ui_works_by_keyboard(page: Any, failed_run: str) -> None:
    page.goto("/ui/runs")
    expect(page.locator("table.runs")).to_contain_text("failed")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Enter")
    # From the main area, Tab reaches the filters, then the first run's link.
    for _ in range(6):
        page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text(re.compile(r"#\d+ ui"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/runs/[^/]+$"))
    expect(page.locator("li.job").first).to_be_visible()
    page.goto(f"/ui/runs/{failed_run}/jobs/build/log")
    step = page.get_by_role("button", name="▾ compile")
    step.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="▸ compile")).to_be_focused()


def test_ui_live_refresh_keeps_keyboard_focus(page: Any, failed_run: str) -> None:
    page.goto(f"/ui/runs/{failed_run}")
    link = page.locator("#log-job-unit")
    link.focus()
    link.evaluate("el => { el.dataset.old = '1'; }")
    page.evaluate("htmx.trigger('#run', 'refresh')")
    fresh = page.locator("#log-job-unit:not([data-old])")
    fresh.wait_for(state="attached")  # the fragment was swapped for a new one
    expect(fresh).to_be_focused()


def test_ui_monitor_page_is_accessible(page: Any, axe_source: str) -> None:
    page.goto("/ui/monitor")
    expect(page.locator("#monitor")).to_contain_text("No pipelines are watched")
    check_accessibility(page, axe_source)
    screenshot(page, "monitor")


def test_ui_page_at_200_percent_zoom_keeps_the_run_table_readable(
    browser: Any, server: Served, failed_run: str
) -> None:
    # 200 % zoom of a 1280 px window is a 640 px wide viewport at twice the pixel ratio.
    context = browser.new_context(
        base_url=server.base_url, viewport={"width": 640, "height": 400}, device_scale_factor=2
    )
    context.add_init_script(f"sessionStorage.setItem('conveyor.token', '{API_TOKEN}')")
    tab = context.new_page()
    try:
        tab.goto(f"/ui/runs/{failed_run}")
        expect(tab.locator("li.job", has_text="unit")).to_be_visible()
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
    finally:
        context.close()
