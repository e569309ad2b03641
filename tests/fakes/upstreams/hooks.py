"""The webhook senders of the fake upstreams: the deliveries GitLab (`Pipeline Hook`),
GitHub (`workflow_run`) and Jenkins (the Notification plugin's JSON, with the shared secret
in `X-Conveyor-Token`) send when a pipeline changes, as (headers, body) pairs to POST to
`/webhooks/monitor/{provider}`. `secret` signs (GitHub) or accompanies (GitLab, Jenkins)
the delivery; pass a wrong one to forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

__all__ = ["Delivery", "github_workflow_run", "gitlab_pipeline_hook", "jenkins_notification"]

Delivery = tuple[dict[str, str], bytes]


def gitlab_pipeline_hook(
    project: str, ref: str, secret: str, *, pipeline_id: int = 1099, status: str = "running"
) -> Delivery:
    payload: dict[str, Any] = {
        "object_kind": "pipeline",
        "object_attributes": {"id": pipeline_id, "ref": ref, "tag": False, "status": status},
        "project": {"path_with_namespace": project, "web_url": f"https://gitlab.example/{project}"},
    }
    body = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        "x-gitlab-event": "Pipeline Hook",
        "x-gitlab-token": secret,
    }
    return headers, body


def github_workflow_run(repo: str, branch: str, secret: str, *, run_id: int = 5099) -> Delivery:
    payload = {
        "action": "completed",
        "workflow_run": {"id": run_id, "head_branch": branch, "status": "completed"},
        "repository": {"full_name": repo},
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-github-event": "workflow_run",
        "x-hub-signature-256": signature,
    }
    return headers, body


def jenkins_notification(job_url: str, secret: str, *, number: int = 99) -> Delivery:
    """`job_url` as Jenkins writes it: `job/team/job/app/job/feature%252Fx/`."""
    name = job_url.rstrip("/").rsplit("/", 1)[-1]
    payload = {
        "name": name,
        "url": job_url,
        "build": {
            "full_url": f"https://jenkins.example/{job_url}{number}/",
            "number": number,
            "phase": "COMPLETED",
            "status": "SUCCESS",
            "url": f"{job_url}{number}/",
        },
    }
    headers = {"content-type": "application/json", "x-conveyor-token": secret}
    return headers, json.dumps(payload).encode()
