"""Run every loopback benchmark in turn (`make bench`), printing each one's own table.

Each script measures its figure as a ratio against a baseline in the same run; see
docs/benchmarks.md for the figures, goals and the command of each one. The comparison with
gitlab-ci-local needs Node.js and is separate: `make bench-gitlab`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "cli_startup.py",
    "plan_chain.py",
    "gitlab_real_plan.py",
    "engine_jobs.py",
    "engine_output.py",
    "engine_sandbox.py",
    "store_open.py",
    "server_webhooks.py",
    "server_api.py",
    "monitor_sync.py",
    "monitor_api.py",
    "monitor_hooks.py",
    "fleet_dispatch.py",
    "fleet_scale.py",
]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        print(f"\n## bench/{script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], check=False).returncode:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
