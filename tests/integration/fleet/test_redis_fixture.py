"""tests/redis.py and fleet.app against a real redis-server: a message sent to a queue is
received from it, survives a Redis restart with the append-only file, and the settings that
make long jobs safe are those the app carries."""

from __future__ import annotations

from pathlib import Path

import redis
from conveyor.fleet.app import ATTEMPT_TASK, VISIBILITY_TIMEOUT_S, celery_app
from tests.redis import RedisServer, start_redis


def test_each_test_gets_an_empty_database(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()


def test_the_app_carries_the_long_job_settings(redis_url: str) -> None:
    conf = celery_app(redis_url).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"


def test_a_queued_message_survives_a_redis_restart(tmp_path: Path) -> None:
    server: RedisServer = start_redis(tmp_path, appendonly=True)
    try:
        app = celery_app(server.url())
        app.send_task(ATTEMPT_TASK, kwargs={"n": 1}, queue="linux")
        server.restart()
        client = redis.Redis.from_url(server.url())
        assert client.llen("linux") == 1
        client.close()
    finally:
        server.stop()
