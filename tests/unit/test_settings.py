"""conveyor.toml validation: keys named in errors, secrets only from the environment."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.settings import DEFAULT_API_URLS, parse_settings

SECRET = "s3cr3t-webhook-value-0123456789"
TOKEN = "api-token-value-abcdefghijklmnop"
ENV = {"HOOK_SECRET": SECRET, "API_TOKEN": TOKEN, "GH_STATUS": "ghs-status-token-0123456789ab"}

BASE = """
[server]
api_token_env = "API_TOKEN"

[[repos]]
name = "acme/app"
provider = "github"
clone_url = "https://github.com/acme/app.git"
secret_env = "HOOK_SECRET"
status_token_env = "GH_STATUS"
"""


def _problems(text: str, env: dict[str, str] = ENV) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, env, file="conveyor.toml")
    return str(caught.value)


def test_settings_defaults() -> None:
    settings = parse_settings("", {})
    assert (settings.server.request_timeout, settings.server.max_body_bytes) == (5.0, 25 << 20)
    assert settings.repos == ()
    assert settings.secrets.api_token is None


def test_settings_resolves_secrets_from_env() -> None:
    settings = parse_settings(BASE, ENV)
    assert settings.secrets.api_token == TOKEN
    assert settings.secrets.webhook_secrets == {"acme/app": SECRET}
    assert settings.repos[0].resolved_api_url == DEFAULT_API_URLS["github"]


def test_settings_repr_never_shows_secret_values() -> None:
    settings = parse_settings(BASE, ENV)
    shown = repr(settings) + str(settings) + settings.model_dump_json() + repr(settings.secrets)
    assert SECRET not in shown
    assert TOKEN not in shown


def test_settings_literal_secret_is_rejected_naming_the_key() -> None:
    text = BASE.replace(
        'secret_env = "HOOK_SECRET"', 'secret_env = "ghp_abcdefghijklmnopqrstuvwxyz0123"'
    )
    message = _problems(text)
    assert "conveyor.toml: repos[0].secret_env: looks like a literal secret" in message
    assert "ghp_" not in message


def test_settings_missing_variable_names_key_and_variable() -> None:
    message = _problems(BASE, {"API_TOKEN": TOKEN})
    assert "repos[0].secret_env: environment variable HOOK_SECRET is not set" in message


def test_settings_short_token_is_rejected() -> None:
    message = _problems(BASE, {**ENV, "API_TOKEN": "short"})
    assert "server.api_token_env: the token in API_TOKEN is implausibly short" in message
    assert "short (" not in message.replace("implausibly short (", "")


def test_settings_unknown_key_names_its_path() -> None:
    message = _problems(BASE + 'colour = "blue"\n')
    assert "repos[0].colour: Extra inputs are not permitted" in message


def test_settings_wrong_type_names_its_path() -> None:
    message = _problems('[server]\nport = "eighty"\n', {})
    assert "conveyor.toml: server.port:" in message


def test_settings_invalid_toml_has_a_position() -> None:
    message = _problems("[server\nport = 1\n", {})
    assert message.startswith("conveyor.toml:1:")
    assert "invalid TOML" in message


def test_settings_duplicate_repo_is_rejected() -> None:
    second = BASE.split("[[repos]]", 1)[1]
    message = _problems(BASE + "[[repos]]" + second)
    assert "'acme/app' is declared twice" in message


def test_settings_clone_url_with_credentials_is_rejected() -> None:
    text = BASE.replace("https://github.com", "https://user:pw@github.com")
    message = _problems(text)
    assert "repos[0].clone_url" in message
    assert "pw@" not in message


def test_settings_every_problem_is_reported_at_once() -> None:
    message = _problems(BASE, {})
    assert "server.api_token_env" in message
    assert "repos[0].secret_env" in message
    assert "repos[0].status_token_env" in message


def test_settings_monitor_section_is_embedded() -> None:
    text = BASE + "\n[monitor]\ninterval = 12.5\n"
    assert parse_settings(text, ENV).monitor.interval == 12.5


def test_settings_secret_variables_names_every_secret_env() -> None:
    settings = parse_settings(BASE, ENV)
    assert settings.secret_variables() == {"API_TOKEN", "HOOK_SECRET", "GH_STATUS"}


def test_settings_sandbox_defaults_to_bwrap_with_network() -> None:
    settings = parse_settings("", {})
    assert (settings.sandbox.mode, settings.sandbox.network) == ("bwrap", True)
    assert settings.sandbox.max_processes is None


def test_settings_sandbox_section_and_repo_network() -> None:
    text = (
        '[sandbox]\nmode = "none"\nmax_processes = 256\nmax_memory_mb = 1024\nmax_cpu_s = 60\n'
        '[[repos]]\nname = "acme/app"\nprovider = "github"\nclone_url = "https://x/y.git"\n'
        'secret_env = "HOOK"\nnetwork = false\n'
    )
    settings = parse_settings(text, {"HOOK": "hook-secret-0123456789abcdef"})
    assert (settings.sandbox.mode, settings.sandbox.max_processes) == ("none", 256)
    assert settings.repos[0].network is False


def test_settings_sandbox_unknown_mode_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings('[sandbox]\nmode = "docker"\n', {})
    assert "sandbox.mode" in str(caught.value)


def test_settings_remote_include_allow_takes_names_addresses_and_networks() -> None:
    text = '[server]\nremote_include_allow = ["git.lan", "10.0.0.0/8", "::1"]\n'
    allow = parse_settings(text, {}).server.remote_include_allow
    assert allow == ("git.lan", "10.0.0.0/8", "::1")


def test_settings_remote_include_allow_names_a_bad_entry() -> None:
    message = _problems('[server]\nremote_include_allow = ["http://x/y"]\n', {})
    assert "server.remote_include_allow:" in message
    assert "'http://x/y' is not a host name, an address or a network (CIDR)" in message
