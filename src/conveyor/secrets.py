"""Secrets come only from environment variables named in configuration.

`read_secret` turns (environment, variable name, the config key that named it) into the value
or a ConfigError that names the key and the variable, never the value. `secret_values` picks
the declared secrets a run receives. `looks_like_secret` flags literal secrets written into a
config file. Pure: the environment is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from conveyor.errors import ConfigError, Problem

__all__ = ["MIN_TOKEN_LENGTH", "looks_like_secret", "read_secret", "secret_values"]

MIN_TOKEN_LENGTH = 20
# Compiled on first use (re caches them): `conveyor run` imports this module for
# `secret_values` alone, and its start-up is mostly imports.
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_CONVENTIONAL_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# Well-known token shapes: GitHub (ghp_, github_pat_), GitLab (glpat-), Slack (xox?-, hook URLs).
_TOKEN_PREFIX = r"^(gh[pousr]_|github_pat_|glpat-|gldt-|xox[abprs]-|https://hooks\.)"  # noqa: S105 (a pattern, not a secret)


def secret_values(names: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    """The values of the secrets `names` that are set in `env` (conveyor's environment)."""
    return {name: env[name] for name in names if env.get(name)}


def looks_like_secret(value: str) -> bool:
    """True when a config value looks like a literal token rather than an env var name:
    a known token prefix, or a long string that is not a variable name."""
    if re.match(_TOKEN_PREFIX, value):
        return True
    return len(value) >= MIN_TOKEN_LENGTH and not re.match(_CONVENTIONAL_ENV_NAME, value)


def read_secret(
    env: Mapping[str, str],
    var: str,
    *,
    key: str,
    file: str = "conveyor.toml",
    min_length: int = 1,
) -> str:
    """The value of environment variable `var`, which config key `key` names.

    Raises ConfigError naming the key and the variable (never the value) when the name is
    not a valid variable name, the variable is unset or empty, or shorter than `min_length`.
    """
    if not re.match(_ENV_NAME, var):
        raise ConfigError(
            [
                Problem(
                    file,
                    0,
                    0,
                    f"{key}: {var!r} is not an environment variable name "
                    "(name the variable that holds the secret, e.g. GITLAB_TOKEN)",
                )
            ]
        )
    value = env.get(var, "")
    if not value:
        raise ConfigError(
            [
                Problem(
                    file,
                    0,
                    0,
                    f"{key}: environment variable {var} is not set "
                    f"(export {var} before starting conveyor)",
                )
            ]
        )
    if len(value) < min_length:
        raise ConfigError(
            [
                Problem(
                    file,
                    0,
                    0,
                    f"{key}: the token in {var} is implausibly short "
                    f"({len(value)} characters, at least {min_length} expected)",
                )
            ]
        )
    return value
