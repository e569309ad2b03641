"""The Celery app of the fleet: one task, `conveyor.attempt`, on a Redis broker.

The server sends each job attempt as task `conveyor.attempt` to the queue its tags choose
(fleet.routing); a `conveyor worker` consumes its queues and runs it. Results do not go
through Celery (no result backend): the attempt's events (output, result) go through a
Redis stream the server reads (fleet.events). The settings below are what make jobs that
run for hours safe; docs/workers.md explains them to operators:

- `task_acks_late` + `task_reject_on_worker_lost`: a message is acknowledged when the task
  ends, not when it starts, so a worker that dies mid-job (kill -9, a lost host) leaves its
  message unacknowledged: it goes back to the queue instead of being lost. The attempt
  itself is then ended `runner_interrupted` by the server (liveness key), and the message
  coming back finds the attempt's claim taken (fleet.events) and is dropped: never run twice.
- `worker_prefetch_multiplier = 1`: a worker reserves only as many messages as it runs
  (its concurrency), so a queued job waits in Redis, where any free worker can take it,
  not behind a long job in one worker's buffer.
- `visibility_timeout` (Redis transport): how long a delivered, unacknowledged message
  stays reserved before Redis hands it to another worker. It must be longer than the
  longest job (else a long job's message is delivered twice; the claim would drop the
  second, but it wastes a slot): VISIBILITY_TIMEOUT_S, 24 hours, above GitLab's longest job
  timeout that conveyor accepts by default. The unacknowledged messages are kept in Redis
  (`unacked` hash), so a Redis that keeps its data (append-only file) loses no queued or
  running job across a restart.
- JSON only (`task_serializer`, `accept_content`): a worker never unpickles what the broker
  hands it.
- Connection retries without end (`broker_connection_max_retries = None`): a worker that
  loses the broker reconnects and goes on (its running jobs keep running meanwhile).

Must not: run jobs (fleet.worker) or read events (fleet.executor). Celery is imported here
and only by the fleet's modules that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["ATTEMPT_TASK", "VISIBILITY_TIMEOUT_S", "celery_app", "celery_settings"]

ATTEMPT_TASK = "conveyor.attempt"
VISIBILITY_TIMEOUT_S = 24 * 3600


def celery_settings(broker_url: str) -> dict[str, Any]:
    """The Celery configuration of the fleet (module docstring)."""
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_timeout": 10,
            "socket_connect_timeout": 10,
            "retry_on_timeout": True,
            "health_check_interval": 10,
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_default_queue": "default",
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "worker_enable_remote_control": False,
        "enable_utc": True,
    }


def celery_app(broker_url: str, name: str = "conveyor") -> Celery:
    """A Celery app on `broker_url` with the fleet's settings."""
    from celery import Celery

    app = Celery(name, set_as_current=False)
    app.conf.update(celery_settings(broker_url))
    return app
