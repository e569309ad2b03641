"""engine.sandbox: the bwrap argv built from a policy, pure."""

from __future__ import annotations

import pytest

from conveyor.engine.sandbox import NO_SANDBOX, Sandbox, sandbox_command

COMMAND = ["bash", "-eo", "pipefail", "-c", "make"]
TMP = "/tmp"  # noqa: S108 (argv text only: nothing is created)
TMP_W = f"{TMP}/w"


def _mount_targets(argv: list[str]) -> list[tuple[str, str]]:
    """(option, target) of every mount, in order."""
    found = []
    for index, arg in enumerate(argv):
        if arg in ("--tmpfs", "--dev", "--proc"):
            found.append((arg, argv[index + 1]))
        elif arg in ("--bind", "--ro-bind"):
            found.append((arg, argv[index + 2]))
    return found


def test_sandbox_command_without_sandbox_is_the_command() -> None:
    assert sandbox_command(NO_SANDBOX, COMMAND, workspace="/w", cwd="/w") == COMMAND


def test_sandbox_command_unshares_pid_ipc_uts_and_dies_with_parent() -> None:
    argv = sandbox_command(Sandbox("bwrap"), COMMAND, workspace="/w", cwd="/w")
    assert argv[0] == "bwrap"
    assert {"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"} <= set(argv)
    assert "--unshare-net" not in argv


def test_sandbox_command_ends_with_the_command_after_chdir() -> None:
    argv = sandbox_command(Sandbox("bwrap"), COMMAND, workspace="/w", cwd="/w/sub")
    cut = argv.index("--")
    assert argv[cut - 2 : cut] == ["--chdir", "/w/sub"]
    assert argv[cut + 1 :] == COMMAND


def test_sandbox_command_network_off_unshares_net() -> None:
    argv = sandbox_command(Sandbox("bwrap", network=False), COMMAND, workspace="/w", cwd="/w")
    assert "--unshare-net" in argv


def test_sandbox_command_root_read_only_workspace_writable_tmp_private() -> None:
    argv = sandbox_command(Sandbox("bwrap"), COMMAND, workspace="/srv/w", cwd="/srv/w")
    assert _mount_targets(argv) == [
        ("--ro-bind", "/"),
        ("--dev", "/dev"),
        ("--proc", "/proc"),
        ("--tmpfs", TMP),
        ("--bind", "/srv/w"),
    ]


def test_sandbox_command_workspace_inside_hidden_home_is_bound_after_it() -> None:
    argv = sandbox_command(
        Sandbox("bwrap"),
        COMMAND,
        workspace="/var/conveyor/worktrees/r1",
        cwd="/var/conveyor/worktrees/r1",
        hidden=["/var/conveyor"],
    )
    targets = [target for _, target in _mount_targets(argv)]
    assert targets.index("/var/conveyor") < targets.index("/var/conveyor/worktrees/r1")


def test_sandbox_command_home_inside_workspace_is_hidden_after_it() -> None:
    argv = sandbox_command(
        Sandbox("bwrap"), COMMAND, workspace="/p", cwd="/p", hidden=["/p/.conveyor"]
    )
    assert _mount_targets(argv)[-2:] == [("--bind", "/p"), ("--tmpfs", "/p/.conveyor")]


def test_sandbox_command_workspace_under_tmp_stays_visible() -> None:
    argv = sandbox_command(Sandbox("bwrap"), COMMAND, workspace=TMP_W, cwd=TMP_W)
    targets = [target for _, target in _mount_targets(argv)]
    assert targets.index(TMP) < targets.index(TMP_W)


def test_sandbox_command_limits_go_through_prlimit_soft_and_hard() -> None:
    sandbox = Sandbox("bwrap", max_processes=64, max_memory_mb=512, max_cpu_s=30)
    argv = sandbox_command(sandbox, COMMAND, workspace="/w", cwd="/w", prlimit="/usr/bin/prlimit")
    tail = argv[argv.index("--") + 1 :]
    assert tail == [
        "/usr/bin/prlimit",
        "--nproc=64:64",
        f"--as={512 * 1024 * 1024}:{512 * 1024 * 1024}",
        "--cpu=30:30",
        "--",
        *COMMAND,
    ]


@pytest.mark.parametrize(
    ("sandbox", "expected"),
    [(Sandbox("bwrap"), False), (Sandbox("bwrap", max_cpu_s=1), True), (NO_SANDBOX, False)],
)
def test_sandbox_has_limits(sandbox: Sandbox, expected: bool) -> None:
    assert sandbox.has_limits is expected


def test_sandbox_command_in_a_cgroup_enters_it_first_and_keeps_cpu_seconds_an_rlimit() -> None:
    sandbox = Sandbox("bwrap", max_processes=64, max_memory_mb=512, max_cpu_s=30)
    argv = sandbox_command(
        sandbox, COMMAND, workspace="/w", cwd="/w", prlimit="/usr/bin/prlimit", cgroup="/cg/job-1"
    )
    into = 'echo $$ > "$1" && shift && exec "$@"'
    assert argv[:6] == ["/bin/sh", "-c", into, "sh", "/cg/job-1/cgroup.procs", "bwrap"]
    assert argv[argv.index("--") + 1 :] == ["/usr/bin/prlimit", "--cpu=30:30", "--", *COMMAND]


def test_sandbox_command_in_a_cgroup_without_cpu_limit_needs_no_prlimit() -> None:
    sandbox = Sandbox("bwrap", max_processes=64)
    argv = sandbox_command(sandbox, COMMAND, workspace="/w", cwd="/w", cgroup="/cg/job-1")
    assert argv[argv.index("--") + 1 :] == COMMAND


@pytest.mark.parametrize(
    ("sandbox", "expected"),
    [
        (Sandbox("bwrap", max_cpu_s=1), False),
        (Sandbox("bwrap", max_processes=1), True),
        (Sandbox("bwrap", max_memory_mb=16), True),
    ],
)
def test_sandbox_has_cgroup_limits(sandbox: Sandbox, expected: bool) -> None:
    assert sandbox.has_cgroup_limits is expected
