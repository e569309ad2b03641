"""Outgoing notifications about runs: GitHub and GitLab commit statuses, Slack messages.

`build_notifications(settings, env, store)` turns conveyor.toml's repos (those with a
`status_token_env`) and `[notify.slack]` into one `Notifications` object, the server queue's
RunListener. `env["CONVEYOR_NOTIFY_NO_WAIT"] == "1"` is the test switch that removes every
retry wait. Nothing here blocks the engine (see notify.base).
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.notify.base import Notifications, Notifier, StatusRepo
from conveyor.notify.github import GitHubStatuses
from conveyor.notify.gitlab import GitLabStatuses
from conveyor.notify.poster import Poster
from conveyor.notify.slack import SlackNotifier
from conveyor.outbound.retry import NO_WAIT, RetryPolicy
from conveyor.settings import Settings
from conveyor.store.base import RunRecords

__all__ = ["Notifications", "Notifier", "build_notifications", "public_url_of"]


def public_url_of(settings: Settings) -> str:
    """`server.public_url`, or the address the server listens on."""
    server = settings.server
    return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")


def build_notifications(
    settings: Settings,
    env: Mapping[str, str],
    store: RunRecords,
) -> Notifications:
    """Every notifier conveyor.toml asks for, sharing one HTTP client and retry policy."""
    if env.get("CONVEYOR_NOTIFY_NO_WAIT") == "1":
        http = Poster(NO_WAIT, timeout_s=2.0)  # the test switch: no waits, short deadlines
    else:
        http = Poster(RetryPolicy())
    public_url = public_url_of(settings)
    tokens = settings.secrets.status_tokens
    by_provider: dict[str, dict[str, StatusRepo]] = {"github": {}, "gitlab": {}}
    for repo in settings.repos:
        token = tokens.get(repo.name)
        if token:
            by_provider[repo.provider][repo.name] = StatusRepo(
                name=repo.name,
                api_url=repo.resolved_api_url,
                token=token,
                project=repo.gitlab_project,
            )
    notifiers: list[Notifier] = []
    if by_provider["github"]:
        notifiers.append(GitHubStatuses(by_provider["github"], http, public_url=public_url))
    if by_provider["gitlab"]:
        notifiers.append(GitLabStatuses(by_provider["gitlab"], http, public_url=public_url))
    slack = settings.notify.slack
    webhook_url = settings.secrets.slack_webhook_url
    if slack is not None and webhook_url:
        notifiers.append(
            SlackNotifier(
                webhook_url,
                store,
                http,
                public_url=public_url,
                on_failure=slack.on_failure,
                on_recovery=slack.on_recovery,
            )
        )
    return Notifications(notifiers, http)
