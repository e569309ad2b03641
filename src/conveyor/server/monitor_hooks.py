"""`POST /webhooks/monitor/{gitlab,github,jenkins}`: upstream pipeline events that make the
monitor fetch the target they concern at once, instead of at the next tick.

Order of checks, as for the run webhooks (server.webhooks), so an unauthenticated caller
learns nothing: the shared secret (`monitor.hook_secret_env`) must verify (GitLab
`X-Gitlab-Token`, GitHub `X-Hub-Signature-256` HMAC of the raw body, Jenkins
`X-Conveyor-Token`), else 401; then the payload must decode (400, 415) and name a watched
target (404). The verification helpers are server.webhook_parse's, the parsing is
monitor.hooks'. The payload's data is never served: a verified event only triggers a fetch
(`Monitor.refresh`, de-duplicated and rate-limited per target) and the answer is 202 before
that fetch ends. Without `hook_secret_env` the routes answer 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.errors import WebhookRejected
from conveyor.monitor.hooks import HookEvent, HookIgnored, match_targets, parse_hook
from conveyor.monitor.service import Monitor
from conveyor.server.webhook_parse import decode_payload, match_github_secret, match_gitlab_token

__all__ = ["JENKINS_HEADER", "build_router"]

JENKINS_HEADER = "X-Conveyor-Token"  # the name of the header carrying Jenkins' shared secret
_SHOWN_CHARS = 200


def build_router(monitor: Monitor, secret: str | None) -> APIRouter:
    router = APIRouter(prefix="/webhooks/monitor", tags=["monitor"])
    secrets = {"monitor": secret} if secret else {}

    def verified(
        provider: str, check: Callable[[Request, bytes], bool], header: str
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                if not secrets:
                    raise WebhookRejected(
                        "monitor webhook: not enabled (set monitor.hook_secret_env in "
                        "conveyor.toml)",
                        http_status=404,
                        code="not_found",
                    )
                body = await request.body()
                if not check(request, body):
                    raise WebhookRejected(
                        f"monitor webhook: {header} is missing or does not match (check the "
                        "secret configured on the provider against monitor.hook_secret_env)",
                        http_status=401,
                        code="bad_signature",
                    )
                payload = decode_payload(body, request.headers.get("content-type"))
                event_name = request.headers.get(f"x-{provider}-event", "")
                outcome = parse_hook(provider, event_name, payload)
            except WebhookRejected:
                monitor.metrics.hook_events.labels(provider, "rejected").inc()
                raise
            return _answer(monitor, provider, outcome)

        return handle

    def gitlab(request: Request, body: bytes) -> bool:
        return bool(match_gitlab_token(secrets, request.headers.get("x-gitlab-token")))

    def github(request: Request, body: bytes) -> bool:
        signature = request.headers.get("x-hub-signature-256")
        return bool(match_github_secret(secrets, body, signature))

    def jenkins(request: Request, body: bytes) -> bool:
        # A shared secret compared in constant time, like GitLab's token.
        return bool(match_gitlab_token(secrets, request.headers.get(JENKINS_HEADER)))

    router.add_api_route("/gitlab", verified("gitlab", gitlab, "X-Gitlab-Token"), methods=["POST"])
    router.add_api_route(
        "/github", verified("github", github, "X-Hub-Signature-256"), methods=["POST"]
    )
    router.add_api_route("/jenkins", verified("jenkins", jenkins, JENKINS_HEADER), methods=["POST"])
    return router


def _answer(monitor: Monitor, provider: str, outcome: HookEvent | HookIgnored) -> Response:
    if isinstance(outcome, HookIgnored):
        monitor.metrics.hook_events.labels(provider, "ignored").inc()
        body = {"status": "ignored", "reason": outcome.reason}
        return _json(body, outcome.status_code)
    targets = match_targets(outcome, monitor.targets)
    if not targets:
        monitor.metrics.hook_events.labels(provider, "unknown_target").inc()
        where = outcome.where
        shown = where if len(where) <= _SHOWN_CHARS else where[:_SHOWN_CHARS] + "…"
        raise WebhookRejected(
            f"monitor webhook: {provider} {shown!r} is not a watched target (add it to "
            "[[monitor.targets]] in conveyor.toml)",
            http_status=404,
            code="unknown_target",
        )
    refreshed = []
    for target in targets:
        started = monitor.refresh(target)
        monitor.metrics.hook_events.labels(provider, str(started)).inc()
        refreshed.append({"key": target.key, "refresh": str(started)})
    return _json({"status": "accepted", "targets": refreshed}, 202)


def _json(data: object, status_code: int) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
