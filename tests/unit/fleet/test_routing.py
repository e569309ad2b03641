"""fleet.routing: tags → queue, a worker's tags → the queues it consumes (FLEET.md)."""

from __future__ import annotations

import pytest

from conveyor.errors import UsageError
from conveyor.fleet.routing import (
    DEFAULT_QUEUE,
    MAX_WORKER_TAGS,
    consumed_queues,
    queue_for,
    tags_of_queue,
)


@pytest.mark.parametrize(
    ("tags", "queue"),
    [
        ((), "default"),
        (("linux",), "linux"),
        (("linux", "docker"), "docker+linux"),
        (("docker", "linux", "docker"), "docker+linux"),
        ((" gpu ", ""), "gpu"),
    ],
)
def test_queue_of_a_job_is_its_sorted_unique_tags(tags: tuple[str, ...], queue: str) -> None:
    assert queue_for(tags) == queue
    assert tags_of_queue(queue) == tuple(sorted({t.strip() for t in tags if t.strip()}))


def test_worker_without_queues_consumes_default_only() -> None:
    assert consumed_queues([]) == (DEFAULT_QUEUE,)


def test_worker_consumes_every_combination_of_its_tags_not_default() -> None:
    assert consumed_queues(["linux", "docker"]) == ("docker", "linux", "docker+linux")


def test_worker_naming_default_consumes_it_too() -> None:
    assert consumed_queues(["default", "gpu"]) == ("default", "gpu")


def test_a_job_reaches_a_worker_only_with_all_its_tags() -> None:
    consumed = set(consumed_queues(["linux", "docker"]))
    assert queue_for(["docker", "linux"]) in consumed
    assert queue_for(["linux"]) in consumed
    assert queue_for(["linux", "gpu"]) not in consumed
    assert queue_for([]) not in consumed


def test_an_empty_queue_is_refused() -> None:
    with pytest.raises(UsageError, match="--queue"):
        consumed_queues(["linux", " "])


@pytest.mark.parametrize("tag", ["c++", "50%", "a+b%2B"])
def test_a_tag_holding_the_separator_or_percent_routes(tag: str) -> None:
    queue = queue_for([tag, "linux"])
    assert queue in consumed_queues(["linux", tag])
    assert queue_for([tag]) not in consumed_queues(["linux"])
    assert set(tags_of_queue(queue)) == {tag, "linux"}


def test_too_many_tags_are_refused() -> None:
    with pytest.raises(UsageError, match=f"at most {MAX_WORKER_TAGS}"):
        consumed_queues([f"t{n}" for n in range(MAX_WORKER_TAGS + 1)])
