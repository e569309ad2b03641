"""`GET /dashboard`: one self-contained HTML page over the monitor cache and the latest runs;
`GET /` redirects to the web UI (server/ui).

The page (`dashboard.html`, package data next to this module) holds no data: its inline
script reads `GET /api/v1/pipelines`, `GET /api/v1/runs` and `GET /api/v1/runs/{id}` with
fetch(), sending the API token the user typed as `Authorization: Bearer` when reads are not
public. So the page itself needs no auth. It is read once when the router is built and
served as the same bytes with a Content-Security-Policy that allows exactly its inline
script and style (`sha256-` hashes computed here by `content_security_policy`, pure) and
nothing from another origin. This module must not render data into HTML: the page's script
does that in the browser, through textContent.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

__all__ = ["DASHBOARD_PATH", "build_router", "content_security_policy", "load_page"]

DASHBOARD_PATH = "/dashboard"
_PAGE_FILE = "dashboard.html"
_INLINE = {
    "script": re.compile(r"<script>(.*?)</script>", re.DOTALL),
    "style": re.compile(r"<style>(.*?)</style>", re.DOTALL),
}
_ANY_TAG = {
    "script": re.compile(r"<script\b", re.IGNORECASE),
    "style": re.compile(r"<style\b", re.IGNORECASE),
}


def _source_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(page: str) -> str:
    """The CSP header value for `page`: its inline `<script>` and `<style>` blocks by hash,
    fetch() to this origin only, no plugins, frames, base or form targets. A `<script` or
    `<style` tag with attributes would not be hashed (and the browser would refuse it), so
    it is refused here, naming the tag."""
    sources: dict[str, list[str]] = {}
    for tag, block in _INLINE.items():
        found = block.findall(page)
        if len(found) != len(_ANY_TAG[tag].findall(page)):
            raise ValueError(
                f"{_PAGE_FILE}: a <{tag}> tag has attributes (write it as a bare <{tag}>, "
                "so its hash goes into the Content-Security-Policy)"
            )
        sources[tag] = [_source_hash(text) for text in found]
    return "; ".join(
        [
            "default-src 'none'",
            " ".join(["script-src 'self'", *sources["script"]]),
            " ".join(["style-src 'self'", *sources["style"]]),
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def load_page() -> str:
    """The page as shipped in the package, with line ends as a browser parses them (it turns
    CR LF into LF before hashing an inline block, so the served text must match)."""
    page = files("conveyor.server").joinpath(_PAGE_FILE).read_text(encoding="utf-8")
    return page.replace("\r\n", "\n")


def build_router() -> APIRouter:
    page = load_page()
    body = page.encode("utf-8")
    headers = {
        "Content-Security-Policy": content_security_policy(page),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The page changes only with conveyor itself; revalidating keeps an upgrade visible.
        "Cache-Control": "no-cache",
    }
    router = APIRouter(tags=["dashboard"])

    @router.get(DASHBOARD_PATH, include_in_schema=False)
    async def dashboard() -> Response:
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    return router
