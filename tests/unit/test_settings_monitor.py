"""`[monitor]` settings: defaults, literal secrets refused, tokens from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conveyor.errors import ConfigError
from conveyor.settings.monitor import MonitorSettings, resolve_hook_secret, resolve_targets

GL_TOKEN = "glpat-abcdefghijklmnopqrst"


def _settings(**target: str) -> MonitorSettings:
    return MonitorSettings.model_validate(
        {"targets": [{"provider": "gitlab", "repo": "g/a", **target}]}
    )


def test_monitor_settings_defaults() -> None:
    settings = MonitorSettings()
    assert (
        settings.interval,
        settings.timeout,
        settings.targets,
        settings.include_canceled,
    ) == (30.0, 8.0, (), False)


def test_literal_secret_in_token_env_is_refused_without_echo() -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(token_env=GL_TOKEN)
    assert "token_env" in str(caught.value)
    assert GL_TOKEN not in str(caught.value)


def test_gitlab_token_shorter_than_20_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_targets(_settings(token_env="GITLAB_TOKEN"), {"GITLAB_TOKEN": "short-token"})
    message = str(caught.value)
    assert "monitor.targets[0].token_env" in message and "GITLAB_TOKEN" in message
    assert "short-token" not in message


def test_missing_variables_are_all_reported() -> None:
    settings = MonitorSettings.model_validate(
        {
            "targets": [
                {"provider": "gitlab", "repo": "g/a", "token_env": "GL"},
                {"provider": "github", "repo": "o/r", "token_env": "GH"},
            ]
        }
    )
    with pytest.raises(ConfigError) as caught:
        resolve_targets(settings, {})
    assert len(caught.value.problems) == 2


def test_resolved_target_hides_its_token() -> None:
    (target,) = resolve_targets(_settings(token_env="GITLAB_TOKEN"), {"GITLAB_TOKEN": GL_TOKEN})
    assert (
        target.base_url,
        target.key,
        target.token,
    ) == ("https://gitlab.com", "g/a@main", GL_TOKEN)
    assert GL_TOKEN not in repr(target)


def test_jenkins_needs_url_and_both_credentials() -> None:
    with pytest.raises(ValidationError):
        MonitorSettings.model_validate({"targets": [{"provider": "jenkins", "repo": "a/b"}]})
    settings = MonitorSettings.model_validate(
        {
            "targets": [
                {
                    "provider": "jenkins",
                    "repo": "a/b",
                    "url": "https://j.example",
                    "token_env": "JT",
                }
            ]
        }
    )
    with pytest.raises(ConfigError, match="both user_env and token_env"):
        resolve_targets(settings, {"JT": "x" * 30})


@pytest.mark.parametrize(
    "target",
    [
        {"url": "ftp://x"},
        {"url": "https://user:pw@gitlab.example"},
        {"repo": "a/../b"},
        {"branch": "main@x"},
        {"provider": "svn"},
        {"colour": "red"},
    ],
)
def test_bad_target_fields_are_refused(target: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        _settings(**target)


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        MonitorSettings.model_validate(
            {
                "targets": [
                    {"provider": "gitlab", "repo": "g/a"},
                    {"provider": "github", "repo": "g/a"},
                ]
            }
        )


def _jenkins(**target: str) -> MonitorSettings:
    return MonitorSettings.model_validate(
        {"targets": [{"provider": "jenkins", "url": "https://j.example", **target}]}
    )


def test_jenkins_multibranch_target_keys_like_the_others() -> None:
    (target,) = resolve_targets(_jenkins(repo="team/app", branch="feature/x"), {})
    assert (target.key, target.job) == ("team/app@feature/x", None)


def test_jenkins_plain_job_names_the_target_by_its_path() -> None:
    (target,) = resolve_targets(_jenkins(job="folder/app"), {})
    assert (target.key, target.job) == ("folder/app@main", "folder/app")


def test_jenkins_old_config_with_branch_in_repo_says_how_to_change_it() -> None:
    with pytest.raises(ValidationError) as caught:
        _jenkins(repo="team/app/main", branch="main")
    message = str(caught.value)
    assert 'write repo = "team/app", branch = "main"' in message
    assert 'job = "team/app/main"' in message


def test_job_is_refused_for_other_providers() -> None:
    with pytest.raises(ValidationError, match="jenkins targets only"):
        _settings(job="g/a")


def test_hook_secret_comes_from_the_named_variable() -> None:
    settings = MonitorSettings.model_validate({"hook_secret_env": "HOOK"})
    assert resolve_hook_secret(settings, {"HOOK": "h" * 24}) == "h" * 24
    assert resolve_hook_secret(MonitorSettings(), {}) is None
    with pytest.raises(ConfigError, match=r"monitor\.hook_secret_env"):
        resolve_hook_secret(settings, {"HOOK": "short"})
