"""The three fake APIs behind one loopback server, their data, and the faults to inject.

Data: `gitlab[project_path]`, `github["owner/repo"]`, `jenkins["folder/job"]` (a
multibranch branch job: `jenkins["team/app/main"]`, `jenkins["team/app/feature%2Fx"]`) hold raw
upstream records (newest first) in each API's own shape, extra fields included. With
`auto_data`, unknown repos answer 5 generated records (benchmarks of many targets).
`faults[repo] = Fault.X` makes every data request of that repo misbehave; `requests` logs
everything received (headers included) for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from tests.fakes.upstreams.server import Answer, HttpServer, Request

__all__ = [
    "FAKE_GITHUB_TOKEN",
    "FAKE_GITLAB_TOKEN",
    "FAKE_JENKINS_TOKEN",
    "FAKE_JENKINS_USER",
    "FAKE_LEAKS",
    "FakeUpstream",
    "Fault",
]

FAKE_GITLAB_TOKEN = "glpat-FAKEgitlabTOKEN0123456789"
FAKE_GITHUB_TOKEN = "ghp_FAKEgithubTOKEN0123456789abcd"
FAKE_JENKINS_USER = "robot"
FAKE_JENKINS_TOKEN = "11FAKEjenkinsAPItoken0123456789"
# Secrets an upstream might put into a payload; none may ever leave conveyor.
FAKE_LEAKS = ("FAKE-TRIGGER-TOKEN-7f3a", "leaky.user@example.com", "FAKE-JOB-TOKEN-91b2")

BASE_TIME = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Fault(StrEnum):
    HTTP_502 = "502"
    HTTP_503 = "503"
    RATE_LIMIT = "429"
    HANG = "hang"
    RESET = "reset"
    HTML = "html"
    TRUNCATED = "truncated"
    HUGE = "huge"
    BAD_SHA = "bad_sha"
    BAD_REF = "bad_ref"
    SECRETS = "secrets"


def _sha(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:40]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def gitlab_pipeline(
    n: int, *, ref: str = "main", status: str = "success", host: str = "gitlab.example"
) -> dict[str, Any]:
    created = BASE_TIME + timedelta(minutes=n)
    return {
        "id": 1000 + n,
        "iid": n,
        "project_id": 7,
        "status": status,
        "source": "push",
        "ref": ref,
        "sha": _sha(f"gl{n}"),
        "web_url": f"https://{host}/p/-/pipelines/{1000 + n}",
        "created_at": _iso(created),
        "updated_at": _iso(created + timedelta(minutes=3)),
    }


def github_run(
    n: int, *, branch: str = "main", status: str = "completed", conclusion: str | None = "success"
) -> dict[str, Any]:
    created = BASE_TIME + timedelta(minutes=n)
    return {
        "id": 5000 + n,
        "name": "CI",
        "head_branch": branch,
        "status": status,
        "conclusion": conclusion,
        "run_number": n,
        "event": "push",
        "head_sha": _sha(f"gh{n}"),
        "html_url": f"https://github.example/o/r/actions/runs/{5000 + n}",
        "created_at": _iso(created),
        "updated_at": _iso(created + timedelta(minutes=2)),
        "run_started_at": _iso(created),
    }


def jenkins_build(
    n: int, *, result: str | None = "SUCCESS", building: bool = False
) -> dict[str, Any]:
    return {
        "_class": "hudson.model.FreeStyleBuild",
        "number": n,
        "result": result,
        "building": building,
        "url": f"https://jenkins.example/job/a/{n}/",
        "timestamp": int((BASE_TIME + timedelta(minutes=n)).timestamp() * 1000),
        "duration": 0 if building else 90_000,
        "actions": [
            {},
            {"lastBuiltRevision": {"SHA1": _sha(f"jk{n}")}},
        ],
    }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


class FakeUpstream:
    def __init__(self, *, delay_s: float = 0.0, auto_data: bool = False) -> None:
        self.delay_s = delay_s
        self.auto_data = auto_data
        self.gitlab: dict[str, list[dict[str, Any]]] = {}
        self.github: dict[str, list[dict[str, Any]]] = {}
        self.jenkins: dict[str, list[dict[str, Any]]] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[Request] = []
        self.retries: list[tuple[str, str]] = []
        self.crumbs: dict[str, str] = {}  # session cookie value -> crumb
        self.record_requests = True
        self.http = HttpServer(self.handle)
        self.url = ""

    async def start(self, port: int = 0) -> str:
        self.url = await self.http.start(port)
        return self.url

    async def stop(self) -> None:
        await self.http.stop()

    def expire_crumbs(self) -> None:
        self.crumbs.clear()

    def requests_to(self, fragment: str) -> list[Request]:
        return [r for r in self.requests if fragment in r.path]

    async def handle(self, request: Request) -> Answer:
        if request.path == "/_fake/hang":  # benchmarks: from now on every request hangs
            self.delay_s = 3600.0
            return _json({"hanging": True})
        if self.record_requests:
            self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        path = request.path
        if path.startswith("/api/v4/projects/"):
            return self._gitlab(request)
        if path.startswith("/repos/"):
            return self._github(request)
        if path == "/crumbIssuer/api/json" or path.startswith("/job/"):
            return self._jenkins(request)
        return _json({"message": "404 Not Found"}, 404)

    # -- faults -----------------------------------------------------------------------
    def _fault(self, repo: str, records: list[dict[str, Any]], shape: str) -> Answer | None:
        fault = self.faults.get(repo)
        if fault is None:
            return None
        simple = {
            Fault.HTTP_502: Answer(
                502, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"}
            ),
            Fault.HTTP_503: Answer(503, b"maintenance", {"Retry-After": "5"}),
            Fault.RATE_LIMIT: _json(
                {"message": "API rate limit exceeded"},
                429,
                {"Retry-After": "120", "x-ratelimit-remaining": "0"},
            ),
            Fault.HANG: Answer(action="hang"),
            Fault.RESET: Answer(action="reset"),
            Fault.HTML: Answer(
                200,
                b"<!DOCTYPE html><html><body>Sign in</body></html>",
                {"Content-Type": "text/html"},
            ),
            Fault.TRUNCATED: Answer(
                200,
                json.dumps(self._wrap(records, shape)).encode()[:40],
                {"Content-Type": "application/json"},
            ),
            Fault.HUGE: Answer(200, b"", {"Content-Type": "application/json"}, action="huge"),
        }
        if fault in simple:
            return simple[fault]
        broken = [dict(r) for r in records]
        for record in broken:
            if fault == Fault.BAD_SHA:
                for name in ("sha", "head_sha"):
                    if name in record:
                        record[name] = "not-a-sha; rm -rf /"
                if "actions" in record:
                    record["actions"] = [{"lastBuiltRevision": {"SHA1": "xyz"}}]
            elif fault == Fault.BAD_REF:
                for name in ("ref", "head_branch"):
                    if name in record:
                        record[name] = "../../etc/passwd\x1b[31m"
                if "url" in record:
                    record["url"] = "javascript:alert(1)"
            elif fault == Fault.SECRETS:
                record["token"] = FAKE_LEAKS[2]
                record["trigger_url"] = f"https://x.example/trigger?token={FAKE_LEAKS[0]}"
                record["user"] = {"email": FAKE_LEAKS[1], "private_token": FAKE_LEAKS[2]}
        return _json(self._wrap(broken, shape))

    @staticmethod
    def _wrap(records: list[dict[str, Any]], shape: str) -> Any:
        if shape == "github":
            return {"total_count": len(records), "workflow_runs": records}
        if shape == "jenkins":
            return {"_class": "hudson.model.FreeStyleProject", "builds": records}
        return records

    def _records(
        self, store: dict[str, list[dict[str, Any]]], repo: str, make: Any
    ) -> list[dict[str, Any]] | None:
        if repo not in store and self.auto_data:
            store[repo] = [make(n) for n in range(5, 0, -1)]
        return store.get(repo)

    # -- GitLab -----------------------------------------------------------------------
    def _gitlab(self, request: Request) -> Answer:
        if request.headers.get("private-token") != FAKE_GITLAB_TOKEN:
            return _json({"message": "401 Unauthorized"}, 401)
        rest = request.path[len("/api/v4/projects/") :]
        project_id, _, tail = rest.partition("/")
        project = unquote(project_id)
        if request.method == "POST" and tail == "pipeline":
            ref = request.query.get("ref", "")
            pipelines = self.gitlab.setdefault(project, [])
            new = gitlab_pipeline(len(pipelines) + 100, ref=ref, status="created")
            pipelines.insert(0, new)
            self.retries.append(("gitlab", project))
            return _json(new, 201)
        records = self._records(self.gitlab, project, gitlab_pipeline)
        if tail != "pipelines" or records is None:
            return _json({"message": "404 Project Not Found"}, 404)
        ref = request.query.get("ref")
        chosen = [r for r in records if ref is None or r["ref"] == ref]
        after = request.query.get("updated_after")
        if after:
            chosen = [r for r in chosen if r["updated_at"] > after.replace("Z", ".000Z")]
        chosen.sort(key=lambda r: r["updated_at"], reverse=request.query.get("sort") != "asc")
        per_page, page = (
            int(request.query.get("per_page", "20")),
            int(request.query.get("page", "1")),
        )
        shown = chosen[(page - 1) * per_page : page * per_page]
        headers = {
            "x-total": str(len(chosen)),
            "x-page": str(page),
            "x-per-page": str(per_page),
            "ratelimit-remaining": "1999",
        }
        if page * per_page < len(chosen):
            headers["x-next-page"] = str(page + 1)
        return self._fault(project, shown, "gitlab") or _json(shown, headers=headers)

    # -- GitHub -----------------------------------------------------------------------
    def _github(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {FAKE_GITHUB_TOKEN}":
            return _json({"message": "Bad credentials"}, 401)
        parts = request.path.strip("/").split("/")
        repo = "/".join(parts[1:3])
        if request.method == "POST" and parts[3:5] == ["actions", "runs"] and parts[-1] == "rerun":
            refused = self._fault(repo, [], "github")
            if refused is not None:
                return refused
            self.retries.append(("github", f"{repo}#{parts[5]}"))
            return Answer(201, b"{}", {"Content-Type": "application/json"})
        records = self._records(self.github, repo, github_run)
        if parts[3:] != ["actions", "runs"] or records is None:
            return _json({"message": "Not Found"}, 404)
        branch = request.query.get("branch")
        chosen = [r for r in records if branch is None or r["head_branch"] == branch]
        shown = chosen[: int(request.query.get("per_page", "30"))]
        body = json.dumps(self._wrap(shown, "github")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "x-ratelimit-remaining": "4999", "x-ratelimit-reset": "1900000000"}
        fault = self._fault(repo, shown, "github")
        if fault is not None:
            return fault
        if request.headers.get("if-none-match") == etag:
            return Answer(304, b"", headers)
        return Answer(200, body, {"Content-Type": "application/json", **headers})

    # -- Jenkins ----------------------------------------------------------------------
    def _jenkins(self, request: Request) -> Answer:
        expected = base64.b64encode(f"{FAKE_JENKINS_USER}:{FAKE_JENKINS_TOKEN}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Answer(401, b"<html>Unauthorized</html>", {"Content-Type": "text/html"})
        if request.path == "/crumbIssuer/api/json":
            session = secrets.token_hex(8)
            crumb = secrets.token_hex(16)
            self.crumbs[session] = crumb
            return _json(
                {
                    "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                    "crumb": crumb,
                    "crumbRequestField": "Jenkins-Crumb",
                },
                headers={"Set-Cookie": f"JSESSIONID.fake={session}; Path=/; HttpOnly"},
            )
        # Jenkins' paths: /job/<name>/job/<name>…; a multibranch project's branch job is
        # named by its encoded branch (`feature%2Fx`), URL-encoded again in the path.
        parts = request.path.strip("/").split("/")
        job = "/".join(
            unquote(parts[i + 1]) for i in range(0, len(parts) - 1, 2) if parts[i] == "job"
        )
        if request.method == "POST" and parts[-1] == "build":
            return self._jenkins_build(request, job)
        records = self._records(self.jenkins, job, jenkins_build)
        if parts[-2:] != ["api", "json"] or records is None:
            return Answer(404, b"<html>Not Found</html>", {"Content-Type": "text/html"})
        limit = 100
        tree = request.query.get("tree", "")
        if tree.endswith("}") and "{" in tree:
            limit = int(tree.rsplit("{", 1)[1].rstrip("}").split(",")[-1])
        shown = records[:limit]
        # A fault set on a multibranch project (its repo) applies to its branch jobs too.
        faulty = job if job in self.faults else job.rpartition("/")[0]
        return self._fault(faulty, shown, "jenkins") or _json(self._wrap(shown, "jenkins"))

    def _jenkins_build(self, request: Request, job: str) -> Answer:
        cookie = request.headers.get("cookie", "")
        session = cookie.partition("JSESSIONID.fake=")[2].split(";")[0]
        if not session or self.crumbs.get(session) != request.headers.get("jenkins-crumb"):
            return Answer(
                403,
                b"<html>No valid crumb was included in the request</html>",
                {"Content-Type": "text/html"},
            )
        builds = self.jenkins.setdefault(job, [])
        builds.insert(0, jenkins_build(len(builds) + 100, result=None, building=True))
        self.retries.append(("jenkins", job))
        return Answer(201, b"", {"Location": f"{self.url}/queue/item/1/"})
