"""`dashboard.content_security_policy` (pure): every bare inline block is allowed by its own
hash, nothing else is, and a block the hash could not cover is refused naming the tag."""

from __future__ import annotations

import base64
import hashlib

import pytest

from conveyor.server.dashboard import content_security_policy


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_content_security_policy_hashes_each_inline_block() -> None:
    page = "<style>a{}</style><p>é</p><script>one()</script><script>\ntwo('é')\n</script>"
    directives = {
        part.split()[0]: part.split()[1:] for part in content_security_policy(page).split("; ")
    }
    assert directives["script-src"] == [
        "'self'",
        sha256_source("one()"),
        sha256_source("\ntwo('é')\n"),
    ]
    assert directives["style-src"] == ["'self'", sha256_source("a{}")]
    assert directives["default-src"] == ["'none'"]
    assert directives["form-action"] == ["'none'"]


@pytest.mark.parametrize(
    ("page", "tag"),
    [
        ('<script src="https://cdn.example/x.js"></script>', "script"),
        ("<script type=module>go()</script>", "script"),
        ("<STYLE media=print>a{}</STYLE>", "style"),
    ],
)
def test_content_security_policy_refuses_a_block_with_attributes(page: str, tag: str) -> None:
    with pytest.raises(ValueError, match=f"a <{tag}> tag has attributes"):
        content_security_policy(page)
