"""worker.toml: the settings of a `conveyor worker` (docs/workers.md).

    [worker]
    broker_url_env = "CONVEYOR_BROKER_URL"   # the variable holding the Redis URL (a secret)
    home = "/var/lib/conveyor-worker"        # mirrors, job folders, caches (default:
                                             # $CONVEYOR_HOME, else ~/.conveyor-worker)
    grace = 600                              # seconds running jobs get at SIGTERM

    [clone_tokens]                           # repo name (as in the server's [[repos]]) ->
    app = "APP_CLONE_TOKEN"                  # the variable holding its clone token

A worker needs no database and no server configuration: the broker and the URLs in each
task. Secrets (the broker URL, clone tokens) come from the environment, never the file.
Pure: the environment and the file's text are arguments.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conveyor.errors import ConfigError, Problem
from conveyor.secrets import read_secret

__all__ = ["WorkerConfig", "WorkerSettings", "parse_worker_settings"]


class WorkerSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    broker_url_env: str = "CONVEYOR_BROKER_URL"
    home: Path | None = None
    grace: float = Field(default=600.0, ge=0)


class WorkerSettings(BaseModel):
    """worker.toml (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    worker: WorkerSection = WorkerSection()
    clone_tokens: dict[str, str] = {}


@dataclass(frozen=True, slots=True, repr=False)
class WorkerConfig:
    """The settings with their secrets read; its repr shows no value."""

    settings: WorkerSettings
    broker_url: str
    clone_tokens: Mapping[str, str] = field(default_factory=dict)

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v for v in (self.broker_url, *self.clone_tokens.values()) if v)

    def __repr__(self) -> str:
        return "WorkerConfig(<secrets hidden>)"


def parse_worker_settings(
    text: str, env: Mapping[str, str], *, file: str = "worker.toml"
) -> WorkerConfig:
    """worker.toml's text and the environment → WorkerConfig; ConfigError naming every
    problem."""
    try:
        raw = tomllib.loads(text)
        settings = WorkerSettings.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(file, 0, 0, f"invalid TOML: {exc}")]) from None
    except ValidationError as exc:
        raise ConfigError(
            [
                Problem(file, 0, 0, f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                for e in exc.errors()
            ]
        ) from None
    problems: list[Problem] = []

    def read(var: str, key: str) -> str:
        try:
            return read_secret(env, var, key=key, file=file, min_length=1)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return ""

    broker_url = read(settings.worker.broker_url_env, "worker.broker_url_env")
    tokens = {
        repo: read(var, f"clone_tokens.{repo}") for repo, var in settings.clone_tokens.items()
    }
    if problems:
        raise ConfigError(problems)
    return WorkerConfig(settings, broker_url, tokens)
