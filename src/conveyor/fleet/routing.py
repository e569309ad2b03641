"""Which Celery queue a job goes to, and which queues a worker consumes (pure).

A job's queue is its tags sorted, without duplicates, joined with `+` (`[linux, docker]` →
`docker+linux`); a job without tags goes to `default`. A worker started with
`--queue linux --queue docker` consumes every non-empty combination of its tags (`docker`,
`linux`, `docker+linux`): GitLab's rule that a runner takes a job only when it has ALL of
the job's tags. `default` is consumed only by a worker that names it (it is what a worker
consumes when it names no queue). A tag holding `+` or `%` is written with them
percent-encoded (`c++` → `c%2B%2B`) in queue names, so any tag GitLab accepts routes.
Must not: touch the broker.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from conveyor.errors import UsageError

__all__ = [
    "DEFAULT_QUEUE",
    "MAX_WORKER_TAGS",
    "consumed_queues",
    "queue_for",
    "tags_of_queue",
]

DEFAULT_QUEUE = "default"
SEPARATOR = "+"
# 2**12 - 1 = 4,095 queues: past this a worker's queue list (one Redis list each, polled
# by BRPOP) costs more than it helps; name fewer, broader tags.
MAX_WORKER_TAGS = 12


def _encoded(tag: str) -> str:
    return tag.replace("%", "%25").replace(SEPARATOR, "%2B")


def queue_for(tags: Iterable[str]) -> str:
    """The queue of a job with `tags`."""
    unique = sorted({_encoded(tag.strip()) for tag in tags if tag.strip()})
    return SEPARATOR.join(unique) if unique else DEFAULT_QUEUE


def tags_of_queue(queue: str) -> tuple[str, ...]:
    """The tags a job queue stands for (`default` stands for none)."""
    if queue == DEFAULT_QUEUE:
        return ()
    return tuple(unquote(part) for part in queue.split(SEPARATOR))


def consumed_queues(worker_queues: Sequence[str]) -> tuple[str, ...]:
    """The queue names a worker started with `--queue` `worker_queues` consumes (module
    docstring), `default` first when named, then by size and name; none named: `default`.
    UsageError for an empty tag, or for more than MAX_WORKER_TAGS tags."""
    named = [q.strip() for q in worker_queues] or [DEFAULT_QUEUE]
    if not all(named):
        raise UsageError(
            "conveyor worker: an empty --queue is not a tag (one tag per --queue: "
            "--queue linux --queue docker)"
        )
    tags = sorted({_encoded(q) for q in named if q != DEFAULT_QUEUE})
    if len(tags) > MAX_WORKER_TAGS:
        raise UsageError(
            f"conveyor worker: {len(tags)} --queue tags, at most {MAX_WORKER_TAGS} "
            "(a worker consumes every combination of its tags)"
        )
    combos = [
        SEPARATOR.join(combo)
        for size in range(1, len(tags) + 1)
        for combo in itertools.combinations(tags, size)
    ]
    return (DEFAULT_QUEUE, *combos) if DEFAULT_QUEUE in named else tuple(combos)
