"""A ready-made monitoring scenario over the fake upstreams, shared by the monitor's tests
and benchmarks: the environment with the fake tokens, four targets (GitLab with a nested
group, a second GitLab project, GitHub, a Jenkins folder job), seed data, and the monitor's
routers mounted on a bare FastAPI app with the error envelope.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.upstreams.apis import (
    FAKE_GITHUB_TOKEN,
    FAKE_GITLAB_TOKEN,
    FAKE_JENKINS_TOKEN,
    FAKE_JENKINS_USER,
    FakeUpstream,
    github_run,
    gitlab_pipeline,
    jenkins_build,
)

__all__ = ["API_TOKEN", "ENV", "TOKENS", "make_app", "open_api_client", "seed", "targets_for"]

ENV = {
    "GITLAB_TOKEN": FAKE_GITLAB_TOKEN,
    "GITHUB_TOKEN": FAKE_GITHUB_TOKEN,
    "JENKINS_USER": FAKE_JENKINS_USER,
    "JENKINS_TOKEN": FAKE_JENKINS_TOKEN,
}
TOKENS = (FAKE_GITLAB_TOKEN, FAKE_GITHUB_TOKEN, FAKE_JENKINS_TOKEN)


def targets_for(url: str) -> list[dict[str, str]]:
    return [
        {
            "provider": "gitlab",
            "repo": "group/sub/app",
            "branch": "main",
            "url": url,
            "token_env": "GITLAB_TOKEN",
        },
        {
            "provider": "gitlab",
            "repo": "group/other",
            "branch": "main",
            "url": url,
            "token_env": "GITLAB_TOKEN",
        },
        {
            "provider": "github",
            "repo": "octo/api",
            "branch": "main",
            "url": url,
            "token_env": "GITHUB_TOKEN",
        },
        {
            "provider": "jenkins",
            "repo": "folder/app",
            "branch": "main",
            "url": url,
            "user_env": "JENKINS_USER",
            "token_env": "JENKINS_TOKEN",
        },
    ]


API_TOKEN = "api-token-for-tests-0123456789"


def make_app(monitor: Any) -> Any:
    """The monitor's three routers on a bare FastAPI app that renders ApiError as the
    envelope (what server.app.create_app does too); reads need the API token."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from conveyor.server import cctray, metrics, pipelines
    from conveyor.server.errors import ApiError

    app = FastAPI()
    app.state.api_token = API_TOKEN
    app.state.public_read = False

    @app.exception_handler(ApiError)
    async def _render(request: Request, exc: ApiError) -> JSONResponse:
        body = {"error": {"code": exc.code, "message": str(exc), "request_id": "test"}}
        return JSONResponse(body, status_code=exc.http_status)

    app.include_router(pipelines.build_router(monitor))
    app.include_router(metrics.build_router(monitor))
    app.include_router(cctray.build_router(monitor))
    return app


def open_api_client(monitor: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(monitor))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://conveyor.test",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


def seed(upstream: FakeUpstream) -> None:
    upstream.gitlab["group/sub/app"] = [gitlab_pipeline(n) for n in (4, 3, 2, 1)]
    upstream.gitlab["group/other"] = [gitlab_pipeline(n) for n in (2, 1)]
    upstream.github["octo/api"] = [
        github_run(3, status="in_progress", conclusion=None),
        github_run(2, conclusion="failure"),
        github_run(1),
    ]
    upstream.jenkins["folder/app/main"] = [
        jenkins_build(2, result=None, building=True),
        jenkins_build(1, result="FAILURE"),
    ]
