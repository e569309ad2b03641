"""`[sandbox]` of conveyor.toml: how the server confines the jobs it runs.

    [sandbox]
    mode = "bwrap"          # or "none" (then the server logs a warning at every start)
    network = true          # false: jobs see loopback only ([[repos]] network overrides)
    max_processes = 4096    # per job (unset: not limited): cgroup v2 where conveyor's
    max_memory_mb = 8192    # cgroup is delegated to it, rlimits otherwise; CPU seconds
    max_cpu_s = 3600        # always an rlimit (engine.cgroups, docs/security.md)

The server defaults to "bwrap" and refuses to start when bubblewrap cannot run, unless
`mode = "none"` is written explicitly. The run chain turns these settings into the engine's
`Sandbox` (engine.sandbox); this module imports no engine. Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SandboxSettings"]


class SandboxSettings(BaseModel):
    """`[sandbox]` (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    mode: Literal["bwrap", "none"] = "bwrap"
    network: bool = True
    max_processes: int | None = Field(default=None, ge=1)
    max_memory_mb: int | None = Field(default=None, ge=16)
    max_cpu_s: int | None = Field(default=None, ge=1)
