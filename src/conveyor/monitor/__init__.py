"""The pipeline monitor: watch GitLab CI, GitHub Actions and Jenkins pipelines.

`service.Monitor` ties it together: `settings` (the `[monitor]` section), `providers`
(one client per upstream API, pure parsers), `http` (the one network boundary), `validate`
(every upstream value checked), `cache` (immutable entries, pre-serialized JSON), `sync`
(one tick), `metrics` (its own Prometheus registry). The HTTP routes live in
`conveyor.server.{pipelines,metrics,cctray}` and only read the cache. docs/monitor.md.
"""

__all__: list[str] = []
