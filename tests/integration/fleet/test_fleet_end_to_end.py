"""The fleet end to end (tests/integration/fleet/conftest.py: a real serve, redis,
PostgreSQL and two real `conveyor worker` processes): jobs land on the workers their tags
choose, their logs and results come back; cancel reaches a remote job; a worker killed with
-9 mid-job; a job whose tags no worker has; a server restarted mid-run, also during a retry,
in a retry's delay, and while a retry waits for a worker."""

from __future__ import annotations

import time

import httpx

from tests.integration.fleet.conftest import PENDING_TIMEOUT_S, Fleet, kill_all, processes_with


def test_jobs_land_on_the_workers_their_tags_choose(fleet: Fleet) -> None:
    run_id = fleet.trigger(
        "jobs:\n"
        "  build:\n    tags: [linux]\n    run: echo built on $HOSTNAME-linux\n"
        "  train:\n    tags: [gpu]\n    needs: [build]\n"
        "    run: |\n      echo one\n      echo two >&2\n"
    )
    run = fleet.wait_final(run_id)
    assert run["status"] == "success", run
    workers = {job["name"]: job["worker"] for job in run["jobs"]}
    assert workers["train"] == "gpu-box"
    assert workers["build"] in {"linux", "gpu-box"}
    lines = fleet.log(run_id, "train")
    assert [(line["n"], line["stream"], line["text"]) for line in lines] == [
        (1, "stdout", "one"),
        (2, "stderr", "two"),
    ]
    listed = fleet.api("GET", "/api/v1/workers")
    assert {w["name"]: w["queues"] for w in listed["workers"]} == {
        "gpu-box": ["linux", "gpu"],
        "linux": ["linux"],
    }
    assert all(w["is_live"] for w in listed["workers"])


def test_cancel_reaches_a_running_remote_job_and_leaves_no_process(fleet: Fleet) -> None:
    marker = "61.4242"
    run_id = fleet.trigger(
        f"jobs:\n  long:\n    tags: [gpu]\n    run: echo started; sleep {marker}\n"
    )
    fleet.wait(run_id, lambda _: any(r["text"] == "started" for r in fleet.log(run_id, "long")))
    assert processes_with(marker)
    started = time.monotonic()
    fleet.api("POST", f"/api/v1/runs/{run_id}/cancel")
    run = fleet.wait_final(run_id)
    assert (run["status"], run["jobs"][0]["status"]) == ("canceled", "canceled")
    while processes_with(marker) and time.monotonic() - started < 5:
        time.sleep(0.05)
    left = processes_with(marker)
    kill_all(left)
    assert not left
    assert time.monotonic() - started < 5


def test_a_worker_killed_mid_job_is_retried_on_another(fleet: Fleet) -> None:
    marker = "13.4343"
    run_id = fleet.trigger(
        "jobs:\n  work:\n    tags: [linux]\n"
        "    retry: {max: 1, when: [runner_interrupted]}\n"
        "    run: |\n      echo go\n"
        f'      if [ "$CONVEYOR_ATTEMPT" = 1 ]; then sleep {marker}; fi\n'
    )
    victim = fleet.worker_running(f"{run_id}:work:1")
    running = fleet.wait(run_id, lambda r: r["jobs"][0]["worker"] is not None)
    assert (running["jobs"][0]["status"], running["jobs"][0]["worker"]) == ("running", victim)
    fleet.wait(run_id, lambda _: bool(processes_with(marker)))  # the job's step runs
    fleet.stop_worker(victim, kill=True)
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = processes_with(marker)  # the killed worker's job, reaped (fleet.reaper)
    kill_all(orphans)
    try:
        final = fleet.wait_final(run_id, timeout_s=40)
    finally:
        fleet.start_worker(victim)
    assert not orphans
    job = final["jobs"][0]
    assert (final["status"], job["status"], job["attempt"]) == ("success", "success", 2), final
    assert job["worker"] != victim
    texts = [line["text"] for line in fleet.log(run_id, "work")]
    assert "retrying: runner_interrupted" in texts
    numbers = [line["n"] for line in fleet.log(run_id, "work")]
    assert numbers == list(range(1, len(numbers) + 1))


def test_a_job_whose_tags_no_worker_has_waits_then_fails_stuck(fleet: Fleet) -> None:
    run_id = fleet.trigger("jobs:\n  render:\n    tags: [macos]\n    run: echo never\n")
    waiting = fleet.wait(run_id, lambda r: bool(r["jobs"]) and r["jobs"][0]["reason"] is not None)
    assert waiting["jobs"][0]["status"] == "pending"
    assert waiting["jobs"][0]["reason"] == "no worker for tags [macos]"
    final = fleet.wait_final(run_id, timeout_s=PENDING_TIMEOUT_S + 20)
    assert (final["status"], final["jobs"][0]["status"]) == ("failed", "failed")
    assert final["jobs"][0]["reason"] == "stuck_or_timeout_failure"


def test_a_server_restarted_mid_run_reattaches_and_records_everything(fleet: Fleet) -> None:
    run_id = fleet.trigger(
        "jobs:\n  slow:\n    tags: [gpu]\n"
        "    run: |\n      echo before\n      sleep 2\n      echo after\n"
        "  next:\n    tags: [linux]\n    needs: [slow]\n    run: echo next\n"
    )
    fleet.wait(run_id, lambda _: any(r["text"] == "before" for r in fleet.log(run_id, "slow")))
    fleet.stop_server()
    time.sleep(0.5)  # the job goes on on its worker meanwhile
    fleet.start_server()
    final = fleet.wait_final(run_id)
    assert final["status"] == "success", final
    slow = next(j for j in final["jobs"] if j["name"] == "slow")
    assert (slow["attempt"], slow["worker"]) == (1, "gpu-box")
    lines = fleet.log(run_id, "slow")
    assert [line["text"] for line in lines] == ["before", "after"]
    assert [line["n"] for line in lines] == [1, 2]


def test_a_server_restarted_during_a_retry_reattaches_without_a_second_header(
    fleet: Fleet,
) -> None:
    run_id = fleet.trigger(
        "jobs:\n  flaky:\n    tags: [gpu]\n    retry: 2\n"
        "    run: |\n"
        '      if [ "$CONVEYOR_ATTEMPT" = 1 ]; then echo first; exit 3; fi\n'
        "      echo before\n      sleep 2\n      echo after\n"
    )
    fleet.wait(run_id, lambda _: any(r["text"] == "before" for r in fleet.log(run_id, "flaky")))
    fleet.stop_server()
    time.sleep(0.5)  # attempt 2 goes on on its worker meanwhile
    fleet.start_server()
    final = fleet.wait_final(run_id)
    assert final["status"] == "success", final
    flaky = final["jobs"][0]
    assert (flaky["attempt"], flaky["worker"]) == (2, "gpu-box")
    lines = [(line["n"], line["text"]) for line in fleet.log(run_id, "flaky")]
    step = 'if [ "$CONVEYOR_ATTEMPT" = 1 ]; then echo first; exit 3; fi'
    failure = f"step {step!r} exited with code 3"
    assert lines == [
        (1, "first"),
        (2, failure),
        (3, f"retrying: {failure}"),
        (4, "attempt 2 of 3"),  # once: the restarted server follows attempt 2, no new header
        (5, "before"),
        (6, "after"),  # written by the worker while no server listened
    ]


def test_a_server_restarted_in_a_retry_delay_runs_the_retry(fleet: Fleet) -> None:
    run_id = fleet.trigger(
        "jobs:\n  flaky:\n    tags: [gpu]\n    retry: {max: 1, delay: 30s}\n"
        "    run: |\n"
        '      if [ "$CONVEYOR_ATTEMPT" = 1 ]; then echo first; exit 3; fi\n'
        "      echo second\n"
    )
    waiting = fleet.wait(run_id, lambda r: bool(r["jobs"]) and r["jobs"][0]["attempt"] == 2)
    fleet.stop_server()
    fleet.start_server()
    final = fleet.wait_final(run_id)  # at once: the delay is not waited again
    assert (waiting["jobs"][0]["status"], waiting["status"]) == ("pending", "running")
    assert final["status"] == "success", final
    flaky = final["jobs"][0]
    assert (flaky["attempt"], flaky["status"]) == (2, "success")
    failure = (
        "step 'if [ \"$CONVEYOR_ATTEMPT\" = 1 ]; then echo first; exit 3; fi' exited with code 3"
    )
    assert [(line["n"], line["text"]) for line in fleet.log(run_id, "flaky")] == [
        (1, "first"),
        (2, failure),
        (3, f"retrying in 30s: {failure}"),
        (4, "attempt 2 of 2"),
        (5, "second"),
    ]


def test_a_server_restarted_while_a_retry_waits_for_a_worker_places_it_again(
    fleet: Fleet,
) -> None:
    run_id = fleet.trigger(
        "jobs:\n  flaky:\n    tags: [gpu]\n    retry: {max: 1, delay: 5s}\n    run: exit 3\n"
    )
    fleet.wait(run_id, lambda r: bool(r["jobs"]) and r["jobs"][0]["attempt"] == 2)  # its delay
    fleet.stop_worker("gpu-box")  # the only worker for [gpu]: attempt 2 will wait for one
    try:
        waiting = fleet.wait(
            run_id, lambda r: r["jobs"][0]["status"] == "pending" and bool(r["jobs"][0]["reason"])
        )
        fleet.stop_server()
        fleet.start_server()
        final = fleet.wait_final(run_id, timeout_s=PENDING_TIMEOUT_S + 20)
    finally:
        fleet.start_worker("gpu-box")
    assert (waiting["jobs"][0]["attempt"], waiting["jobs"][0]["reason"]) == (
        2,
        "no worker for tags [gpu]",
    )
    # The restarted server owed attempt 2 and waited for a worker for it again.
    flaky = final["jobs"][0]
    assert (final["status"], flaky["status"], flaky["attempt"]) == ("failed", "failed", 2)
    assert flaky["reason"] == "stuck_or_timeout_failure"


def test_a_worker_stopped_mid_job_cancels_it_after_its_grace(fleet: Fleet) -> None:
    marker = "62.4545"
    run_id = fleet.trigger(
        f"jobs:\n  long:\n    tags: [gpu]\n    run: echo started; sleep {marker}\n"
    )
    fleet.worker_running(f"{run_id}:long:1")
    fleet.wait(run_id, lambda _: any(r["text"] == "started" for r in fleet.log(run_id, "long")))
    try:
        fleet.stop_worker("gpu-box")  # SIGTERM; [worker] grace = 2
        final = fleet.wait_final(run_id)
    finally:
        fleet.start_worker("gpu-box")
    job = final["jobs"][0]
    assert (job["status"], job["reason"], job["worker"]) == (
        "canceled",
        "worker shutdown",
        "gpu-box",
    )
    assert not processes_with(marker)


def test_the_workers_route_needs_the_read_token(fleet: Fleet) -> None:
    answer = httpx.get(f"{fleet.base_url}/api/v1/workers", timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"]
