"""The `[monitor]` section of conveyor.toml and the targets it resolves to.

`MonitorSettings` validates what the file says (pydantic; literal secrets are rejected with an
error naming the key, never echoing the value). `resolve_targets` turns settings plus the
environment into `Target`s carrying their credentials, or one ConfigError listing every
problem. Pure: the environment is an argument; nothing here reads files or sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.errors import ConfigError, Problem
from conveyor.secrets import MIN_TOKEN_LENGTH, looks_like_secret, read_secret

__all__ = [
    "DEFAULT_URLS",
    "MonitorSettings",
    "Target",
    "TargetSettings",
    "resolve_hook_secret",
    "resolve_targets",
]

ProviderName = Literal["gitlab", "github", "jenkins"]

DEFAULT_URLS: dict[str, str] = {
    "gitlab": "https://gitlab.com",
    "github": "https://api.github.com",
}


class TargetSettings(BaseModel):
    """One `[[monitor.targets]]` table: which pipelines of which upstream to watch."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    provider: ProviderName
    repo: str = Field(min_length=1, max_length=255)
    branch: str = Field(default="main", min_length=1, max_length=255)
    # Jenkins only: the path of a plain (not multibranch) job; `repo` defaults to it.
    job: str | None = Field(default=None, min_length=1, max_length=255)
    url: str | None = None
    token_env: str | None = None
    user_env: str | None = None

    @field_validator("token_env", "user_env")
    @classmethod
    def _no_literal_secret(cls, value: str | None) -> str | None:
        if value is not None and looks_like_secret(value):
            raise ValueError(
                "holds what looks like a literal secret; name the environment variable that "
                'holds it instead (e.g. token_env = "GITLAB_TOKEN")'
            )
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://gitlab.example.com")
        if value is not None and "@" in value.split("//", 1)[1].split("/", 1)[0]:
            raise ValueError("must not carry credentials; use token_env / user_env")
        return value

    @model_validator(mode="before")
    @classmethod
    def _repo_defaults_to_job(cls, data: Any) -> Any:
        if isinstance(data, dict) and "repo" not in data and isinstance(data.get("job"), str):
            return {**data, "repo": data["job"]}
        return data

    @field_validator("repo", "branch", "job")
    @classmethod
    def _sane_name(cls, value: str | None) -> str | None:
        if value is not None and (".." in value or any(ord(c) < 32 or c in " @?#" for c in value)):
            raise ValueError("must not contain '..', spaces, '@', '?', '#' or control characters")
        return value

    @model_validator(mode="after")
    def _jenkins_target(self) -> TargetSettings:
        if self.provider != "jenkins":
            if self.job is not None:
                raise ValueError(
                    f"job is for jenkins targets only; a {self.provider} target "
                    "names its project with repo"
                )
            return self
        if self.url is None:
            raise ValueError('a jenkins target needs url = "https://jenkins.example.com"')
        if self.job is None and "/" in self.repo and self.repo.rsplit("/", 1)[1] == self.branch:
            # Before round 2 the branch was written into a multibranch job's path.
            project = self.repo.rsplit("/", 1)[0]
            raise ValueError(
                f'repo = "{self.repo}" ends with the branch: a jenkins repo is now the '
                f'multibranch project without the branch (write repo = "{project}", '
                f'branch = "{self.branch}"); for a plain job write job = "{self.repo}"'
            )
        return self

    @property
    def key(self) -> str:
        return f"{self.repo}@{self.branch}"


class MonitorSettings(BaseModel):
    """`[monitor]`: the sync tick, its limits and the targets to watch."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    interval: float = Field(default=30.0, gt=0, description="seconds between sync ticks")
    jitter: float = Field(default=2.0, ge=0, description="up to this many seconds added")
    concurrency: int = Field(default=16, ge=1, le=1024)
    timeout: float = Field(default=8.0, gt=0, description="deadline of one target's fetch")
    ttl: float = Field(default=300.0, gt=0, description="an entry older than this is stale")
    include_canceled: bool = False
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    hook_secret_env: str | None = Field(
        default=None, description="the variable holding the upstream webhooks' shared secret"
    )
    hook_min_gap: float = Field(
        default=0.5, ge=0, description="seconds between two event refreshes of one target"
    )
    spread: bool = Field(
        default=True,
        description="spread each tick's fetches after the first over most of the interval",
    )
    history_limit: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="pipelines kept per target in the history (the health figures cover them)",
    )
    targets: tuple[TargetSettings, ...] = ()

    @field_validator("hook_secret_env")
    @classmethod
    def _hook_secret_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and looks_like_secret(value):
            raise ValueError(
                "holds what looks like a literal secret; name the environment variable that "
                'holds it instead (e.g. hook_secret_env = "MONITOR_HOOK_SECRET")'
            )
        return value

    @model_validator(mode="after")
    def _unique_keys(self) -> MonitorSettings:
        seen: set[str] = set()
        for target in self.targets:
            if target.key in seen:
                raise ValueError(f"target {target.key} is listed twice; keep one")
            seen.add(target.key)
        return self


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved target: where to ask, and with which credentials (never printed)."""

    provider: ProviderName
    repo: str
    branch: str
    base_url: str
    token: str | None = field(default=None, repr=False)
    user: str | None = field(default=None, repr=False)
    token_env: str | None = None
    job: str | None = None  # jenkins: a plain job's path; None for a multibranch branch

    @property
    def key(self) -> str:
        return f"{self.repo}@{self.branch}"


def resolve_targets(
    settings: MonitorSettings, env: Mapping[str, str], *, file: str = "conveyor.toml"
) -> tuple[Target, ...]:
    """Targets with their secrets read from `env`; ConfigError naming every missing or
    implausible variable (GitLab tokens shorter than 20 characters are refused)."""
    targets: list[Target] = []
    problems: list[Problem] = []
    for index, ts in enumerate(settings.targets):
        where = f"monitor.targets[{index}]"
        try:
            targets.append(_resolve_one(ts, env, where, file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return tuple(targets)


def _resolve_one(ts: TargetSettings, env: Mapping[str, str], where: str, file: str) -> Target:
    token = user = None
    if ts.token_env is not None:
        min_length = MIN_TOKEN_LENGTH if ts.provider == "gitlab" else 1
        token = read_secret(
            env, ts.token_env, key=f"{where}.token_env", file=file, min_length=min_length
        )
    if ts.user_env is not None:
        user = read_secret(env, ts.user_env, key=f"{where}.user_env", file=file)
    if ts.provider == "jenkins" and (token is None) != (user is None):
        raise ConfigError(
            [Problem(file, 0, 0, f"{where}: jenkins needs both user_env and token_env, or neither")]
        )
    base_url = (ts.url or DEFAULT_URLS[ts.provider]).rstrip("/")
    return Target(ts.provider, ts.repo, ts.branch, base_url, token, user, ts.token_env, ts.job)


def resolve_hook_secret(
    settings: MonitorSettings, env: Mapping[str, str], *, file: str = "conveyor.toml"
) -> str | None:
    """The shared secret of the monitor's webhooks (None: the hooks are off); ConfigError
    naming the variable when it is unset or shorter than 20 characters."""
    if settings.hook_secret_env is None:
        return None
    return read_secret(
        env,
        settings.hook_secret_env,
        key="monitor.hook_secret_env",
        file=file,
        min_length=MIN_TOKEN_LENGTH,
    )
