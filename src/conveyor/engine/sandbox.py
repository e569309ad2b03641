"""The job sandbox: one step's command wrapped in bubblewrap (`bwrap`), as an argv.

`Sandbox` is the policy (data: it travels inside `AttemptSpec`, so a worker on another
host applies it the same way); `sandbox_command` turns a step's argv into

    bwrap --unshare-pid --unshare-ipc --unshare-uts [--unshare-net] --die-with-parent
          --ro-bind / /  --dev /dev  --proc /proc  --tmpfs /tmp
          --tmpfs HIDDEN…  --bind WORKSPACE WORKSPACE  --chdir CWD
          -- [prlimit --nproc=… --as=… --cpu=… --] bash -eo pipefail -c SCRIPT

(behind `/bin/sh -c 'echo $$ > CGROUP/cgroup.procs && exec bwrap …'` when the step has its
own cgroup v2, engine.cgroups: then processes and memory are limited there, not by prlimit)

What the job gets: its own PID, IPC and UTS namespaces (its /proc shows only its own
processes: not the server, not another job), the whole filesystem read-only except its
workspace, a private /tmp, an empty folder in place of each hidden path (conveyor's home:
the database, other runs' logs and workspaces, the mirrors), the network unless
`network` is false (then loopback only), and limits on processes, memory and CPU time
(rlimits, or the step's cgroup for the first two). The environment is what the step was
given (the runner passes only that).
Mounts are applied parents first, so a workspace inside a hidden folder (the server's
worktrees, isolated job copies) or inside /tmp (tests) is bound back on top of it.

Process groups: bwrap is the group leader (own group, started by the runner) and waits
for the job as a monitor; the job's processes stay in that group, so one SIGKILL to the
group still stops the whole tree, and when the namespace's init ends the kernel kills
everything left in it. The monitor itself dies on SIGTERM without passing it on, so the
runner sends the polite SIGTERM to the group's other members (`spares_leader`).
Must not: run anything or look at the filesystem (pure; `local.py` and `runner.py` do).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Literal, NamedTuple

__all__ = [
    "NO_SANDBOX",
    "SANDBOX_MODES",
    "Sandbox",
    "SandboxMode",
    "sandbox_command",
]

SandboxMode = Literal["none", "bwrap"]
SANDBOX_MODES: tuple[SandboxMode, ...] = ("none", "bwrap")


class Sandbox(NamedTuple):
    """How a job's steps are confined. `mode` "none": a plain process group, as on a
    developer's machine; "bwrap": the module docstring. Limits None: not limited. (A
    NamedTuple: immutable, and cheaper to define than a dataclass at start-up.)"""

    mode: SandboxMode = "none"
    network: bool = True
    max_processes: int | None = None
    max_memory_mb: int | None = None
    max_cpu_s: int | None = None

    @property
    def is_on(self) -> bool:
        return self.mode == "bwrap"

    @property
    def has_limits(self) -> bool:
        return any(v is not None for v in (self.max_processes, self.max_memory_mb, self.max_cpu_s))

    @property
    def has_cgroup_limits(self) -> bool:
        """Limits a cgroup v2 holds where there is one (engine.cgroups): not CPU seconds."""
        return self.max_processes is not None or self.max_memory_mb is not None


NO_SANDBOX = Sandbox()


def sandbox_command(
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    workspace: str,
    cwd: str,
    hidden: Sequence[str] = (),
    bwrap: str = "bwrap",
    prlimit: str = "prlimit",
    cgroup: str | None = None,
) -> list[str]:
    """`command` confined by `sandbox` (module docstring): `workspace` is the one writable
    folder, `cwd` where the command starts (inside it), `hidden` the folders replaced by
    empty ones (each must exist: bwrap mounts over it), `cgroup` the step's own cgroup v2
    folder with its memory and process limits (engine.cgroups; None: rlimits for them).
    Mode "none": `command` unchanged."""
    if not sandbox.is_on:
        return list(command)
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if cgroup is not None:  # into its cgroup before bwrap starts: all it starts stays there
        argv = ["/bin/sh", "-c", _INTO_CGROUP, "sh", f"{cgroup}/cgroup.procs", *argv]
    if not sandbox.network:
        argv.append("--unshare-net")
    argv += ["--die-with-parent", "--ro-bind", "/", "/"]
    mounts = [
        ("/dev", ["--dev", "/dev"]),
        ("/proc", ["--proc", "/proc"]),
        ("/tmp", ["--tmpfs", "/tmp"]),  # noqa: S108 (a private, empty /tmp: that is the point)
        *((path, ["--tmpfs", path]) for path in hidden),
        (workspace, ["--bind", workspace, workspace]),
    ]
    # Parents first (a stable sort keeps the listed order among equals): a later mount on
    # a folder inside an earlier one stays visible.
    mounts.sort(key=lambda mount: len(PurePosixPath(mount[0]).parts))
    for _, args in mounts:
        argv += args
    argv += ["--chdir", cwd, "--"]
    return argv + _limits(sandbox, prlimit, in_cgroup=cgroup is not None) + list(command)


# The shell writes its own pid ($$) into the cgroup named by $1, then becomes bwrap.
_INTO_CGROUP = 'echo $$ > "$1" && shift && exec "$@"'


def _limits(sandbox: Sandbox, prlimit: str, *, in_cgroup: bool) -> list[str]:
    """`prlimit --nproc=N:N … --` (soft and hard: the job cannot raise them), or nothing.
    `in_cgroup`: processes and memory are the cgroup's, CPU seconds stay an rlimit."""
    args = [prlimit]
    if sandbox.max_processes is not None and not in_cgroup:
        args.append(f"--nproc={sandbox.max_processes}:{sandbox.max_processes}")
    if sandbox.max_memory_mb is not None and not in_cgroup:
        size = sandbox.max_memory_mb * 1024 * 1024
        args.append(f"--as={size}:{size}")
    if sandbox.max_cpu_s is not None:
        args.append(f"--cpu={sandbox.max_cpu_s}:{sandbox.max_cpu_s}")
    return [*args, "--"] if len(args) > 1 else []
