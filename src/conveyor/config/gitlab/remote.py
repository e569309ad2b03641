"""`include: remote` — fetching one remote CI/CD file over HTTP. The network edge of config.

Owns: one GET per URL with httpx, bounded in every direction: a total deadline of 10 s
(connect, redirects and body together), a body of at most 1 MiB (read as a stream and
stopped as soon as it is larger, or refused up front when Content-Length says so), at most
5 redirects, http and https only (httpx follows no other scheme), no credentials (the
entries refuse URLs with `user:password@`; GitLab fetches remote includes without
authentication). Proxy and CA settings of the environment apply. Failures become a
FetchError whose message is the reason (`HTTP 404`, `timeout after 10s`, `larger than 1
MiB`), never the URL or a response body.
Must not: parse anything (includes.py does) or be imported before a remote include is
met: httpx stays out of `conveyor validate` for files without one.
"""

from __future__ import annotations

import time

from conveyor.config.gitlab.includes import FetchError

__all__ = ["MAX_BODY_BYTES", "MAX_REDIRECTS", "TIMEOUT_S", "fetch_remote"]

TIMEOUT_S = 10.0
MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 5


def _too_large(limit_bytes: int) -> FetchError:
    if limit_bytes % (1024 * 1024) == 0:
        return FetchError(f"larger than {limit_bytes // (1024 * 1024)} MiB")
    return FetchError(f"larger than {limit_bytes} bytes")


def fetch_remote(
    url: str, *, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BODY_BYTES
) -> bytes:
    """The body at `url` (status 200 only). Raises FetchError with the reason."""
    import httpx  # only when a remote include is met

    deadline = time.monotonic() + timeout_s
    timeout = f"timeout after {timeout_s:g}s"
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout_s),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers={"Accept": "application/yaml, text/yaml, text/plain, */*"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != httpx.codes.OK:
                raise FetchError(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise _too_large(max_bytes)
                if time.monotonic() > deadline:
                    raise FetchError(timeout)
    except httpx.TimeoutException:
        raise FetchError(timeout) from None
    except httpx.TooManyRedirects:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.UnsupportedProtocol:
        raise FetchError("redirected to a URL that is not http or https") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"cannot connect ({type(exc).__name__})") from None
    return bytes(body)
