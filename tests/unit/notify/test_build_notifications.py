"""build_notifications: conveyor.toml's repos and [notify.slack] become notifiers."""

from __future__ import annotations

from conveyor.notify import build_notifications, public_url_of
from conveyor.notify.github import GitHubStatuses
from conveyor.notify.gitlab import GitLabStatuses
from conveyor.notify.slack import SlackNotifier
from conveyor.settings import parse_settings
from tests.fakes.memory_store import MemoryRunStore

ENV = {
    "HOOK": "hook-secret-0123456789abcdef",
    "GH_STATUS": "ghp_status0123456789abcdefghijkl",
    "GL_STATUS": "glpat-status0123456789abcdefgh",
    "SLACK_URL": "http://127.0.0.1:9/services/T/B/secret0123456789",
}
TEXT = """
[server]
port = 9000

[[repos]]
name = "acme/gh"
provider = "github"
clone_url = "/srv/gh"
secret_env = "HOOK"
status_token_env = "GH_STATUS"

[[repos]]
name = "acme/gl"
provider = "gitlab"
clone_url = "/srv/gl"
secret_env = "HOOK"
status_token_env = "GL_STATUS"

[[repos]]
name = "acme/quiet"
provider = "github"
clone_url = "/srv/quiet"
secret_env = "HOOK"

[notify.slack]
webhook_url_env = "SLACK_URL"
on_recovery = false
"""


def test_build_notifications_makes_one_notifier_per_kind() -> None:
    notifications = build_notifications(parse_settings(TEXT, ENV), ENV, MemoryRunStore())
    kinds = [type(n) for n in notifications.notifiers]
    assert kinds == [GitHubStatuses, GitLabStatuses, SlackNotifier]


def test_build_notifications_without_tokens_or_slack_is_empty() -> None:
    text = TEXT.split("[notify.slack]")[0].replace('status_token_env = "GH_STATUS"', "")
    text = text.replace('status_token_env = "GL_STATUS"', "")
    notifications = build_notifications(parse_settings(text, ENV), ENV, MemoryRunStore())
    assert notifications.notifiers == ()


def test_public_url_defaults_to_the_listening_address() -> None:
    assert public_url_of(parse_settings(TEXT, ENV)) == "http://127.0.0.1:9000"
    with_url = TEXT.replace("port = 9000", 'public_url = "https://ci.example/"')
    assert public_url_of(parse_settings(with_url, ENV)) == "https://ci.example"


def test_no_wait_switch_comes_from_the_environment() -> None:
    env = {**ENV, "CONVEYOR_NOTIFY_NO_WAIT": "1"}
    notifications = build_notifications(parse_settings(TEXT, env), env, MemoryRunStore())
    assert repr(notifications.notifiers[2]) == "SlackNotifier(<webhook hidden>)"
    assert notifications.http is not None
    assert notifications.http.retry.should_wait is False
