"""One module per upstream API: `gitlab`, `github`, `jenkins`; `base` holds the Provider
protocol and what they share. Each is pure `parse_*` functions plus a thin client that
sends its requests through `conveyor.monitor.upstream.Upstream`.
"""

__all__: list[str] = []
