"""Issue 13, figure 2: upstream event -> fresh entry latency.

Processes: the fake upstreams (tests/fakes/upstreams, --delay per answer, 50 ms by default)
and `conveyor serve` watching --targets GitLab/GitHub/Jenkins targets on the default 30 s
tick, with `monitor.hook_secret_env` set. After the first sync, each event (GitLab
`Pipeline Hook`, GitHub `workflow_run`, Jenkins notification, in turn, each for another
target, one at a time) is POSTed to `/webhooks/monitor/{provider}`; the latency is from
sending the event to the first `GET /api/v1/pipelines/{key}` (polled every 2 ms) whose
`fetched_at` moved. Then a burst of 100 events for one target: how many fetches of it the
burst cost (`conveyor_monitor_hook_events_total`: each `started` event and each `queued`
one's follow-up), and the upstream requests of every target meanwhile
(`conveyor_monitor_upstream_requests_total`, which includes the spread tick's).

    .venv/bin/python bench/monitor_hooks.py [--targets 90] [--events 60] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from monitor_api import ENV, start_serve, wait_for, write_config  # noqa: E402
from tests.fakes.upstreams.hooks import (  # noqa: E402
    github_workflow_run,
    gitlab_pipeline_hook,
    jenkins_notification,
)

SECRET = "bench-monitor-hook-secret-0123456789"
PROVIDERS = ("gitlab", "github", "jenkins")


def delivery(n: int) -> tuple[str, str, tuple[dict[str, str], bytes]]:
    """(provider, key, delivery) of target n as bench/monitor_api.py's config names it."""
    provider = PROVIDERS[n % 3]
    repo = f"team/app{n}"
    if provider == "gitlab":
        sent = gitlab_pipeline_hook(repo, "main", SECRET)
    elif provider == "github":
        sent = github_workflow_run(repo, "main", SECRET)
    else:
        sent = jenkins_notification(f"job/team/job/app{n}/job/main/", SECRET)
    return provider, f"{repo}@main", sent


def upstream_requests(http: httpx.Client) -> float:
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("conveyor_monitor_upstream_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def event_fetches(http: httpx.Client) -> float:
    """Fetches the events caused: each `started` one, plus the one follow-up each `queued`
    event adds (`conveyor_monitor_hook_events_total`)."""
    total = 0.0
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("conveyor_monitor_hook_events_total{") and (
            'outcome="started"' in line or 'outcome="queued"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=90)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-bench-hooks-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.upstreams", "--delay", str(args.delay)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        children.append(fake)
        assert fake.stdout is not None
        upstream = fake.stdout.readline().decode().strip()
        config = write_config(tmp, upstream, args.targets, interval=30.0)
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("[monitor]\n", '[monitor]\nhook_secret_env = "MONITOR_HOOK_SECRET"\n', 1),
            encoding="utf-8",
        )
        ENV["MONITOR_HOOK_SECRET"] = SECRET
        serve, port = start_serve(config, tmp / "home", tmp / "serve.log")
        children.append(serve)
        base = f"http://127.0.0.1:{port}"
        wait_for(base, lambda es: all(not e["stale"] for e in es), "fresh")
        latencies_ms: dict[str, list[float]] = {p: [] for p in PROVIDERS}
        with httpx.Client(base_url=base, timeout=10) as http:
            for n in range(args.events):
                provider, key, (headers, body) = delivery(n % args.targets)
                before = http.get(f"/api/v1/pipelines/{key}").json()["fetched_at"]
                time.sleep(0.6)  # past hook_min_gap (0.5 s) since the last fetch of any target
                sent = time.perf_counter()
                answer = http.post(f"/webhooks/monitor/{provider}", headers=headers, content=body)
                assert answer.status_code == 202, answer.text
                while http.get(f"/api/v1/pipelines/{key}").json()["fetched_at"] == before:
                    time.sleep(0.002)
                latencies_ms[provider].append((time.perf_counter() - sent) * 1000)
            provider, key, (headers, body) = delivery(0)
            time.sleep(0.6)
            count, fetches = upstream_requests(http), event_fetches(http)
            burst_started = time.perf_counter()
            for _ in range(100):
                http.post(f"/webhooks/monitor/{provider}", headers=headers, content=body)
            burst_s = time.perf_counter() - burst_started
            time.sleep(1.5)
            burst_requests = upstream_requests(http) - count
            burst_fetches = event_fetches(http) - fetches
    finally:
        for child in reversed(children):
            child.terminate()
            child.wait(timeout=10)
    print(f"targets={args.targets} upstream delay={args.delay * 1000:.0f} ms, tick 30 s")
    everything = [v for values in latencies_ms.values() for v in values]
    for name, values in [*latencies_ms.items(), ("all", everything)]:
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        print(
            f"{name:8} event -> fresh entry: median {statistics.median(values):.1f} ms, "
            f"p95 {p95:.1f} ms, max {values[-1]:.1f} ms (n={len(values)})"
        )
    print(
        f"burst of 100 events for one target (sent in {burst_s:.2f} s): {burst_fetches:.0f} "
        f"fetches of it; {burst_requests:.0f} upstream requests in all meanwhile (the spread "
        "tick's fetches of other targets included)"
    )


if __name__ == "__main__":
    main()
