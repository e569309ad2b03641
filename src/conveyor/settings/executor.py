"""`[executor]` of conveyor.toml: where the server runs job attempts.

    [executor]
    kind = "celery"                       # "local" (default): on the server's host
    broker_url_env = "CONVEYOR_BROKER_URL"  # the variable holding the Redis URL (a secret)
    server_url = "http://ci.internal:8080"  # the server's URL as workers reach it
                                            # (default: [server] public_url)
    pending_timeout = 3600                # seconds a job waits for a worker for its tags

With `celery` the run store must be PostgreSQL (`[server] store_url_env`): the server and
its workers' results meet there, and SQLite is refused at start (`Settings` checks it). The
broker URL is a secret like every `_env` value: read from the environment, masked in logs and
errors, never stored in the file. Pure: no I/O; this module imports no fleet code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ExecutorSettings"]


class ExecutorSettings(BaseModel):
    """`[executor]` (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    kind: Literal["local", "celery"] = "local"
    broker_url_env: str | None = None
    server_url: str | None = None
    pending_timeout: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _celery_needs_a_broker(self) -> ExecutorSettings:
        if self.kind == "celery" and not self.broker_url_env:
            raise ValueError(
                'broker_url_env: kind = "celery" needs the name of the environment '
                'variable holding the Redis URL (e.g. broker_url_env = "CONVEYOR_BROKER_URL")'
            )
        return self
