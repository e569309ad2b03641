"""`POST /webhooks/github` and `POST /webhooks/gitlab`: verify, de-duplicate, queue, answer.

Order of checks, so an unauthenticated caller learns nothing: the signature (GitHub HMAC of
the raw body) or token (GitLab) must match one configured repo of that provider, else 401;
then the payload must decode (400, 415); then the payload's repository must be configured
(404) and be the one whose secret matched (401). A push answers 202 `{run_id}` once the run
is stored as `pending`: no git or pipeline work happens on the request path. A redelivery
(`X-GitHub-Delivery`, `X-Gitlab-Event-UUID`) answers 200 with the first run id. The body
size limit is enforced by the middleware while the body is read. The same body received
again within `server.webhook_duplicate_window` (by its SHA-256, per provider) is a
duplicate too, whatever its delivery id: a captured signed body replayed under a new id
starts nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from conveyor.errors import WebhookRejected
from conveyor.model import Event
from conveyor.runs.queue import RunQueue
from conveyor.server.webhook_parse import (
    Ignored,
    decode_payload,
    match_github_secret,
    match_gitlab_token,
    parse_github,
    parse_gitlab,
    payload_repo,
)
from conveyor.settings import Settings

__all__ = ["build_router"]

log = structlog.get_logger(__name__)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])

    @router.post("/github", status_code=202)
    async def github(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        body = await request.body()
        secrets = _provider_secrets(settings, "github")
        matched = match_github_secret(secrets, body, request.headers.get("x-hub-signature-256"))
        if not matched:
            raise _unauthorized("X-Hub-Signature-256 is missing or does not match")
        payload = decode_payload(body, request.headers.get("content-type"))
        event_name = request.headers.get("x-github-event", "")
        repo = _configured_repo(settings, "github", payload, matched, event_name == "ping")
        outcome = parse_github(event_name, payload, repo)
        delivery = request.headers.get("x-github-delivery")
        return await _answer(request, outcome, "github", delivery, body)

    @router.post("/gitlab", status_code=202)
    async def gitlab(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        body = await request.body()
        tokens = _provider_secrets(settings, "gitlab")
        matched = match_gitlab_token(tokens, request.headers.get("x-gitlab-token"))
        if not matched:
            raise _unauthorized("X-Gitlab-Token is missing or does not match")
        payload = decode_payload(body, request.headers.get("content-type"))
        repo = _configured_repo(settings, "gitlab", payload, matched, False)
        outcome = parse_gitlab(request.headers.get("x-gitlab-event", ""), payload, repo)
        delivery = request.headers.get("x-gitlab-event-uuid") or request.headers.get(
            "idempotency-key"
        )
        return await _answer(request, outcome, "gitlab", delivery, body)

    return router


def _provider_secrets(settings: Settings, provider: str) -> dict[str, str]:
    hooks = settings.secrets.webhook_secrets
    return {r.name: hooks[r.name] for r in settings.repos if r.provider == provider}


def _configured_repo(
    settings: Settings,
    provider: str,
    payload: dict[str, Any],
    matched: tuple[str, ...],
    is_ping: bool,
) -> str:
    """The configured repo the payload is about; its secret must be one that matched."""
    name = payload_repo(provider, payload)
    if name is None:
        if is_ping:  # an organisation hook's ping has no repository
            return matched[0]
        field = "repository.full_name" if provider == "github" else "project.path_with_namespace"
        raise WebhookRejected(
            f"webhook: the payload names no repository ({field} is missing)",
            http_status=400,
            code="malformed_payload",
        )
    repo = next(
        (r for r in settings.repos if r.provider == provider and r.name.lower() == name.lower()),
        None,
    )
    if repo is None:
        raise WebhookRejected(
            f"webhook: repository {name!r} is not configured (add it to [[repos]] in "
            "conveyor.toml)",
            http_status=404,
            code="unknown_repo",
        )
    if repo.name not in matched:
        raise _unauthorized(f"the secret that signed this delivery is not {repo.name}'s")
    return repo.name


async def _answer(
    request: Request, outcome: Event | Ignored, provider: str, delivery: str | None, body: bytes
) -> Response:
    if isinstance(outcome, Ignored):
        log.info("webhook.ignored", provider=provider, reason=outcome.reason, delivery=delivery)
        return _json({"status": "ignored", "reason": outcome.reason}, outcome.status_code)
    queue: RunQueue = request.app.state.queue
    key = f"{provider}:{delivery}" if delivery else None
    digest = f"{provider}:sha256:{hashlib.sha256(body).hexdigest()}"
    queued = await queue.enqueue(outcome, delivery_id=key, body_digest=digest)
    if queued.duplicate:
        log.info("webhook.duplicate", provider=provider, delivery=delivery, run_id=queued.run_id)
        return _json({"run_id": queued.run_id, "duplicate": True}, 200)
    return _json({"run_id": queued.run_id}, 202)


def _json(data: dict[str, object], status_code: int) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


def _unauthorized(what: str) -> WebhookRejected:
    return WebhookRejected(
        f"webhook: {what} (check the webhook secret configured on the provider)",
        http_status=401,
        code="bad_signature",
    )
