"""conveyor.toml -> Settings: the server's configuration, validated with pydantic.

Owns the `[server]`, `[[repos]]` and `[notify.slack]` sections (`[[schedules]]` is
`conveyor.settings.schedules.ScheduleSettings`; `[sandbox]` is
`conveyor.settings.sandbox.SandboxSettings`; `[executor]` is
`conveyor.settings.executor.ExecutorSettings`; `[monitor]` is
`conveyor.settings.monitor.MonitorSettings`, embedded here; the monitor imports it from
there, never the other way round) and the rule that secrets never
live in the file: a key ending in `_env` names an environment variable, and the values are
resolved here (via `conveyor.secrets.read_secret`) into a `ResolvedSecrets` object that is kept
apart from the settings (not part of their repr, str or dump). Every problem is a ConfigError
naming the file and the key, e.g. `conveyor.toml: repos[1].secret_env: …`. This module reads
the one file it is given and nothing else; the environment is an argument.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from conveyor.addresses import parse_allow_list
from conveyor.errors import ConfigError, Problem
from conveyor.secrets import MIN_TOKEN_LENGTH, looks_like_secret, read_secret
from conveyor.settings.executor import ExecutorSettings
from conveyor.settings.monitor import MonitorSettings, resolve_targets
from conveyor.settings.sandbox import SandboxSettings
from conveyor.settings.schedules import ScheduleSettings

__all__ = [
    "DEFAULT_API_URLS",
    "ExecutorSettings",
    "RepoSettings",
    "ResolvedSecrets",
    "SandboxSettings",
    "ScheduleSettings",
    "ServerSettings",
    "Settings",
    "SlackSettings",
    "held_secret_values",
    "load_settings",
    "parse_settings",
]

DEFAULT_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
_SECRET_KEY = re.compile(r"(_env$|token|secret|password)", re.IGNORECASE)
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_CREDENTIALS_IN_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", re.IGNORECASE)
# A user name alone can be the token (`https://ghp_...@github.com/`, `https://oauth2:...@`).
_USER_IN_URL = re.compile(r"^[a-z][a-z0-9+.-]*://([^/@:]+)@", re.IGNORECASE)
_REPO_NAME = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ServerSettings(_Section):
    """`[server]`. Times in seconds; `home` defaults to the project's `.conveyor/`."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_token_env: str | None = None
    public_read: bool = False
    public_url: str | None = None  # base of links in statuses and chat (`target_url`)
    request_timeout: float = Field(default=5.0, gt=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # 0: accept and store runs as `pending` but execute none (maintenance / intake only)
    max_parallel_runs: int = Field(default=2, ge=0, le=64)
    home: Path | None = None
    git_timeout: float = Field(default=300.0, gt=0)
    # The run store: a SQLAlchemy URL (e.g. postgresql+psycopg://user:pw@db/conveyor) read from
    # this environment variable (it may hold a password); unset: SQLite in `home`.
    store_url_env: str | None = None
    # Internal hosts `include: remote` may fetch: host names, addresses or networks (CIDR).
    # Loopback, private, link-local… addresses are refused unless named here.
    remote_include_allow: tuple[str, ...] = ()
    # A connection that has not sent a complete request head after this many seconds is
    # closed (slow or idle clients cannot hold connections).
    request_head_timeout: float = Field(default=5.0, gt=0, le=300)
    # The same webhook body (signed, or sent with the repo's token) received again within
    # this many seconds is a duplicate, whatever its delivery id; 0: ids only.
    webhook_duplicate_window: float = Field(default=86400.0, ge=0)

    @field_validator("remote_include_allow")
    @classmethod
    def _allow_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_allow_list(value)  # ValueError names the entry that is no host or network
        return value


class RepoSettings(_Section):
    """One `[[repos]]` entry: a repository conveyor builds."""

    name: str = Field(pattern=_REPO_NAME)
    provider: Literal["github", "gitlab"]
    clone_url: str = Field(min_length=1)
    secret_env: str
    status_token_env: str | None = None
    clone_token_env: str | None = None
    api_url: str | None = None
    project: str | None = None  # GitLab project id or path (default: `name`)
    pipeline_file: str | None = None
    default_branch: str = "main"
    # A pull/merge request from a fork gets no secrets: its jobs that declare some are
    # skipped with the reason ("skip") or run without them ("omit").
    fork_secrets: Literal["skip", "omit"] = "skip"
    # Superseded runs of native pipelines (a .gitlab-ci.yml says its own in
    # workflow:auto_cancel:on_new_commit): conservative | interruptible | none (conveyor.supersede).
    auto_cancel: Literal["conservative", "interruptible", "none"] = "conservative"
    network: bool | None = None  # the repo's jobs reach the network (None: `[sandbox]`'s)

    @field_validator("clone_url", "api_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        user = _USER_IN_URL.match(value or "")
        if value is not None and (
            _CREDENTIALS_IN_URL.match(value) or (user and looks_like_secret(user[1]))
        ):
            raise ValueError(
                "must not carry credentials (put a token in an environment variable and name "
                "it in clone_token_env / status_token_env)"
            )
        return value

    @property
    def resolved_api_url(self) -> str:
        return (self.api_url or DEFAULT_API_URLS[self.provider]).rstrip("/")

    @property
    def gitlab_project(self) -> str:
        return self.project or self.name


class SlackSettings(_Section):
    """`[notify.slack]`: an incoming webhook, on failures and on recoveries."""

    webhook_url_env: str
    on_failure: bool = True
    on_recovery: bool = True


class NotifySettings(_Section):
    slack: SlackSettings | None = None


@dataclass(frozen=True, slots=True, repr=False)
class ResolvedSecrets:
    """Secret values read from the environment. Its repr never shows a value."""

    api_token: str | None = None
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)  # repo name -> secret
    status_tokens: Mapping[str, str] = field(default_factory=dict)
    clone_tokens: Mapping[str, str] = field(default_factory=dict)
    slack_webhook_url: str | None = None
    store_url: str | None = None
    broker_url: str | None = None  # [executor] broker_url_env

    def values(self) -> tuple[str, ...]:
        """Every secret value, for the log masker (the store and broker URLs' passwords on
        their own too)."""
        found = [self.api_token, self.slack_webhook_url, self.store_url, _password(self.store_url)]
        found += [self.broker_url, _password(self.broker_url)]
        for mapping in (self.webhook_secrets, self.status_tokens, self.clone_tokens):
            found.extend(mapping.values())
        return tuple(sorted({v for v in found if v}, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"ResolvedSecrets(<{len(self.values())} values hidden>)"


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    repos: tuple[RepoSettings, ...] = ()
    notify: NotifySettings = NotifySettings()
    monitor: MonitorSettings = MonitorSettings()
    schedules: tuple[ScheduleSettings, ...] = ()
    sandbox: SandboxSettings = SandboxSettings()
    executor: ExecutorSettings = ExecutorSettings()
    _secrets: ResolvedSecrets = PrivateAttr(default_factory=ResolvedSecrets)

    @field_validator("schedules")
    @classmethod
    def _schedule_ids(cls, value: tuple[ScheduleSettings, ...]) -> tuple[ScheduleSettings, ...]:
        """A schedule without an `id` is named by its position ("1", "2", …)."""
        return tuple(
            s if s.id else s.model_copy(update={"id": str(n)}) for n, s in enumerate(value, 1)
        )

    @model_validator(mode="after")
    def _schedules_of_configured_repos(self) -> Settings:
        names = {repo.name for repo in self.repos}
        seen: set[str] = set()
        for n, schedule in enumerate(self.schedules):
            if schedule.repo not in names:
                raise ValueError(
                    f"schedules[{n}].repo: {schedule.repo!r} is not configured (add it to "
                    "[[repos]])"
                )
            if schedule.id in seen:
                raise ValueError(f"schedules[{n}].id: {schedule.id!r} is declared twice")
            seen.add(schedule.id)
        return self

    def schedule(self, schedule_id: str) -> ScheduleSettings | None:
        return next((s for s in self.schedules if s.id == schedule_id), None)

    @model_validator(mode="after")
    def _celery_needs_postgresql(self) -> Settings:
        if self.executor.kind == "celery" and not self.server.store_url_env:
            raise ValueError(
                'executor.kind: "celery" needs the PostgreSQL run store (set '
                "server.store_url_env to the variable holding a postgresql+psycopg:// URL); "
                "SQLite is for a single host"
            )
        return self

    @model_validator(mode="after")
    def _unique_repo_names(self) -> Settings:
        seen: set[str] = set()
        for repo in self.repos:
            if repo.name in seen:
                raise ValueError(f"repos: {repo.name!r} is declared twice")
            seen.add(repo.name)
        return self

    @property
    def secrets(self) -> ResolvedSecrets:
        return self._secrets

    def secret_variables(self) -> frozenset[str]:
        """Names of every environment variable this file says holds a secret of conveyor
        itself (never handed to a pipeline, even one that declares it)."""
        names = {
            self.server.api_token_env,
            self.server.store_url_env,
            self.executor.broker_url_env,
        }
        for repo in self.repos:
            names.update((repo.secret_env, repo.status_token_env, repo.clone_token_env))
        if self.notify.slack is not None:
            names.add(self.notify.slack.webhook_url_env)
        for target in self.monitor.targets:
            names.update((target.token_env, target.user_env))
        return frozenset(n for n in names if n)

    def repo(self, name: str) -> RepoSettings | None:
        for repo in self.repos:
            if repo.name == name:
                return repo
        return None


def held_secret_values(settings: Settings, env: Mapping[str, str]) -> tuple[str, ...]:
    """Every secret value the server holds (its own and the monitor's), for masking its
    log lines (`serve` and `monitor` configure logging with them)."""
    values = list(settings.secrets.values())
    for target in resolve_targets(settings.monitor, env):
        values.extend(v for v in (target.token, target.user) if v)
    return tuple(values)


def load_settings(path: Path, env: Mapping[str, str]) -> Settings:
    """Read, validate and resolve `path`; raises ConfigError with every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(str(path), 0, 0, f"cannot read settings ({exc.strerror})")]
        ) from None
    return parse_settings(text, env, file=str(path))


def parse_settings(text: str, env: Mapping[str, str], *, file: str = "conveyor.toml") -> Settings:
    """The pure half of load_settings: TOML text and environment in, Settings out."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_POSITION.search(str(exc))
        line, col = (int(match[1]), int(match[2])) if match else (0, 0)
        message = _TOML_POSITION.sub("", str(exc)).strip()
        raise ConfigError([Problem(file, line, col, f"invalid TOML: {message}")]) from None
    literal = [
        Problem(
            file,
            0,
            0,
            f"{key}: looks like a literal secret (put it in an environment "
            "variable and write that variable's name here)",
        )
        for key, value in _walk(raw, "")
        if _SECRET_KEY.search(key.rsplit(".", 1)[-1]) and looks_like_secret(value)
    ]
    if literal:
        raise ConfigError(literal)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_problem(file, err) for err in exc.errors()]) from None
    settings._secrets = _resolve(settings, env, file)
    return settings


def _walk(value: object, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{key}[{index}]")
    elif isinstance(value, str):
        yield key, value


def _problem(file: str, error: Any) -> Problem:
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    message = str(error["msg"]).removeprefix("Value error, ")
    return Problem(file, 0, 0, f"{key}: {message}" if key else message)


def _resolve(settings: Settings, env: Mapping[str, str], file: str) -> ResolvedSecrets:
    problems: list[Problem] = []

    def read(var: str | None, key: str, min_length: int = MIN_TOKEN_LENGTH) -> str | None:
        if var is None:
            return None
        try:
            return read_secret(env, var, key=key, file=file, min_length=min_length)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None

    api_token = read(settings.server.api_token_env, "server.api_token_env")
    hooks: dict[str, str] = {}
    statuses: dict[str, str] = {}
    clones: dict[str, str] = {}
    for index, repo in enumerate(settings.repos):
        for var, key, target in (
            (repo.secret_env, "secret_env", hooks),
            (repo.status_token_env, "status_token_env", statuses),
            (repo.clone_token_env, "clone_token_env", clones),
        ):
            value = read(var, f"repos[{index}].{key}")
            if value is not None:
                target[repo.name] = value
    slack = settings.notify.slack
    slack_url = read(slack.webhook_url_env if slack else None, "notify.slack.webhook_url_env")
    store_url = read(settings.server.store_url_env, "server.store_url_env", min_length=1)
    broker_url = read(settings.executor.broker_url_env, "executor.broker_url_env", min_length=1)
    if settings.executor.kind == "celery" and store_url and not store_url.startswith("postgresql"):
        problems.append(
            Problem(
                file,
                0,
                0,
                'executor.kind: "celery" needs the PostgreSQL run store; '
                "server.store_url_env names another database (SQLite is for a single host)",
            )
        )
    if problems:
        raise ConfigError(problems)
    return ResolvedSecrets(
        api_token=api_token,
        webhook_secrets=hooks,
        status_tokens=statuses,
        clone_tokens=clones,
        slack_webhook_url=slack_url,
        store_url=store_url,
        broker_url=broker_url,
    )


def _password(url: str | None) -> str | None:
    """The password part of a database URL, if any (masked on its own: a driver error may
    quote it without the rest of the URL)."""
    if url is None:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None
