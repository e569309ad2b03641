"""Browser tests of the web UI: one headless system Chromium per session (Playwright's own
browser download is never used), a real `conveyor serve` app per test on loopback with real
runs, and axe-core (from the npm registry, cached under .tools/) run in the page.

Chromium is looked up on PATH (`chromium`, as Debian names it); when it is missing the
tests are skipped with the reason, after `make chromium` had its chance to install it."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[3]
AXE_VERSION = "4.10.2"
AXE_FILE = ROOT / ".tools" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "ui"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    return None


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the
# main thread while it is open, and the asyncio tests that follow could not run theirs.
# One module (test_browser.py) uses the browser: one launch per test session all the same.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no system Chromium on PATH (`make chromium` installs Debian's package)")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, fetched once with npm (`npm pack`) into .tools/."""
    if not AXE_FILE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not on PATH: axe-core cannot be fetched")
        target = AXE_FILE.parent
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--silent"],
            cwd=target,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with tarfile.open(target / f"axe-core-{AXE_VERSION}.tgz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            AXE_FILE.write_bytes(member.read())
    return AXE_FILE.read_text(encoding="utf-8")
