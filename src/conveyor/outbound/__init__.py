"""Outbound HTTP: the one client conveyor uses to call other servers.

    base.py    HttpClient (the Protocol callers need), ClientPolicy, Reply
    client.py  OutboundClient: httpx.AsyncClient with explicit timeouts, a deadline on every
               request, a body-size cap, a redirect policy, no cookies kept
    retry.py   RetryPolicy + retry_call (stamina's rules on tenacity) and parse_retry_after,
               the one Retry-After parser
    remote.py  HttpRemoteFetcher: `include: remote` files for config (config.RemoteFetcher)

Callers: monitor (monitor.upstream), notifications (notify.poster), configuration loading
(commands pass HttpRemoteFetcher to config.load_pipeline). Failures are the sanitized
UpstreamError tree of conveyor.errors: no message ever holds a URL, a header or a body.
This package file imports nothing: `conveyor validate` imports remote.py, and httpx and
asyncio stay out of it until a remote include is met.
"""

__all__: list[str] = []
