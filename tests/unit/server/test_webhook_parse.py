"""Webhook payloads -> Events, signatures and tokens (pure)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import WebhookRejected
from conveyor.model import Event, EventKind
from conveyor.server.webhook_parse import (
    Ignored,
    decode_payload,
    github_signature,
    match_github_secret,
    match_gitlab_token,
    parse_github,
    parse_gitlab,
    payload_repo,
)

SHA = "a" * 40
BEFORE = "b" * 40
ZERO = "0" * 40


def github_push(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ref": "refs/heads/main",
        "before": BEFORE,
        "after": SHA,
        "created": False,
        "deleted": False,
        "forced": False,
        "head_commit": {"id": SHA, "message": "fix the thing"},
        "commits": [{"id": SHA, "message": "fix the thing", "added": [], "modified": ["a.py"]}],
        "repository": {"full_name": "acme/app", "default_branch": "main"},
    }
    payload.update(changes)
    return payload


def gitlab_push(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "object_kind": "push",
        "event_name": "push",
        "before": BEFORE,
        "after": SHA,
        "ref": "refs/heads/feature/x",
        "checkout_sha": SHA,
        "project": {"path_with_namespace": "group/sub/app", "default_branch": "main"},
        "commits": [{"id": SHA, "message": "add feature\n\nbody"}],
    }
    payload.update(changes)
    return payload


def test_github_signature_matches_the_secret_that_signed() -> None:
    body = b'{"x": 1}'
    secrets = {"acme/a": "secret-a", "acme/b": "secret-b"}
    assert match_github_secret(secrets, body, github_signature("secret-b", body)) == ("acme/b",)


def test_github_signature_shared_secret_matches_every_repo() -> None:
    body = b"{}"
    secrets = {"acme/a": "shared", "acme/b": "shared", "acme/c": "other"}
    signature = github_signature("shared", body)
    assert match_github_secret(secrets, body, signature) == ("acme/a", "acme/b")


@pytest.mark.parametrize("header", [None, "", "sha1=abc", "sha256=" + "0" * 64])
def test_github_signature_missing_or_wrong_matches_nothing(header: str | None) -> None:
    assert match_github_secret({"acme/a": "secret-a"}, b"{}", header) == ()


def test_github_signature_of_another_body_matches_nothing() -> None:
    signature = github_signature("secret-a", b'{"x": 1}')
    assert match_github_secret({"acme/a": "secret-a"}, b'{"x": 2}', signature) == ()


def test_gitlab_token_matches_in_constant_time_per_repo() -> None:
    tokens = {"g/a": "token-a", "g/b": "token-b"}
    assert match_gitlab_token(tokens, "token-b") == ("g/b",)
    assert match_gitlab_token(tokens, "nope") == ()
    assert match_gitlab_token(tokens, None) == ()


def test_decode_payload_json_and_form_agree() -> None:
    data = github_push()
    form = urlencode({"payload": orjson.dumps(data).decode()}).encode()
    assert decode_payload(orjson.dumps(data), "application/json") == data
    assert decode_payload(form, "application/x-www-form-urlencoded") == data


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"other=1", "application/x-www-form-urlencoded"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
    ],
)
def test_decode_payload_malformed_is_400(body: bytes, content_type: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        decode_payload(body, content_type)
    assert caught.value.http_status == 400


def test_decode_payload_other_media_type_is_415() -> None:
    with pytest.raises(WebhookRejected) as caught:
        decode_payload(b"x", "text/plain")
    assert caught.value.http_status == 415


def test_github_push_to_branch_is_a_push_event() -> None:
    expected = Event(
        kind=EventKind.PUSH,
        ref="main",
        sha=SHA,
        before_sha=BEFORE,
        repo="acme/app",
        message="fix the thing",
        default_branch="main",
    )
    assert parse_github("push", github_push(), "acme/app") == expected


def test_github_push_of_tag_is_a_tag_event() -> None:
    event = parse_github("push", github_push(ref="refs/tags/v1.2.0"), "acme/app")
    assert isinstance(event, Event)
    assert (event.kind, event.ref) == (EventKind.TAG, "v1.2.0")


def test_github_new_branch_has_no_before() -> None:
    event = parse_github("push", github_push(created=True, before=ZERO), "acme/app")
    assert isinstance(event, Event)
    assert event.before_sha is None


def test_github_branch_deletion_is_ignored() -> None:
    outcome = parse_github("push", github_push(deleted=True, after=ZERO), "acme/app")
    assert outcome == Ignored("branch or tag deleted")


def test_github_ping_is_200_and_other_events_202() -> None:
    assert parse_github("ping", {}, "acme/app") == Ignored("ping", status_code=200)
    outcome = parse_github("issues", {}, "acme/app")
    assert isinstance(outcome, Ignored)
    assert outcome.status_code == 202


def test_github_push_without_ref_is_400() -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse_github("push", github_push(ref="main"), "acme/app")
    assert caught.value.http_status == 400


def test_gitlab_push_hook_is_a_push_event() -> None:
    event = parse_gitlab("Push Hook", gitlab_push(), "group/sub/app")
    assert isinstance(event, Event)
    assert (event.kind, event.ref, event.sha, event.before_sha) == (
        EventKind.PUSH,
        "feature/x",
        SHA,
        BEFORE,
    )
    assert event.message == "add feature\n\nbody"


def test_gitlab_tag_push_hook_is_a_tag_event() -> None:
    payload = gitlab_push(object_kind="tag_push", ref="refs/tags/v2", before=ZERO)
    event = parse_gitlab("Tag Push Hook", payload, "group/sub/app")
    assert isinstance(event, Event)
    assert (event.kind, event.ref, event.before_sha) == (EventKind.TAG, "v2", None)


def test_gitlab_branch_deletion_is_ignored() -> None:
    payload = gitlab_push(after=ZERO, checkout_sha=None)
    assert parse_gitlab("Push Hook", payload, "group/sub/app") == Ignored("branch or tag deleted")


def test_gitlab_other_hooks_are_ignored() -> None:
    assert isinstance(parse_gitlab("Merge Request Hook", {}, "g/a"), Ignored)


def test_payload_repo_names() -> None:
    assert payload_repo("github", github_push()) == "acme/app"
    assert payload_repo("gitlab", gitlab_push()) == "group/sub/app"
    assert payload_repo("github", {"repository": "nope"}) is None


def test_github_annotated_tag_runs_the_tagged_commit() -> None:
    tag_object = "c" * 40
    payload = github_push(ref="refs/tags/v1", after=tag_object)
    event = parse_github("push", payload, "acme/app")
    assert isinstance(event, Event)
    assert event.sha == SHA


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
push_keys = st.sampled_from(
    ["ref", "after", "before", "deleted", "created", "head_commit", "repository", "commits",
     "checkout_sha", "project"]
)  # fmt: skip


@given(st.dictionaries(push_keys | st.text(max_size=8), json_values), st.sampled_from(
    ["push", "ping", "Push Hook", "Tag Push Hook", "issues"]
))  # fmt: skip
def test_any_payload_is_an_event_ignored_or_400(payload: dict[str, Any], name: str) -> None:
    body = orjson.dumps(payload)
    data = decode_payload(body, "application/json")
    for parse in (parse_github, parse_gitlab):
        try:
            outcome = parse(name, data, "acme/app")
        except WebhookRejected as rejected:
            assert rejected.http_status == 400
        else:
            assert isinstance(outcome, Event | Ignored)
    payload_repo("github", data)
    payload_repo("gitlab", data)
