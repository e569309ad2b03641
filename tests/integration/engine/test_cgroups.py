"""engine.cgroups: where a sandboxed job's limits live (issue 15). The detection and the
writer run against fake cgroup v2 folders (unified or not, delegated or not); the real
host's answer is checked against what a real sandboxed step sees (rlimits on a host with
cgroup v1 or the hybrid layout, its own cgroup with cgroup v2 delegated); and the shell
that puts a step into its cgroup before bwrap starts runs for real."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.engine.cgroups import (
    CGROUP_ROOT,
    CgroupUnusableError,
    find_cgroups,
    prepare_cgroups,
    reason,
)
from conveyor.engine.runner import LocalRunner, ProcessGroups, StepSpec
from conveyor.engine.sandbox import Sandbox, sandbox_command
from conveyor.model import Stream
from tests.sandboxing import requires_bwrap

OWN = "/user.slice/conveyor.scope"


def _fake_root(
    tmp_path: Path,
    *,
    unified: bool = True,
    offered: str = "cpuset cpu io memory pids",
    enabled: str = "",
    own: str = OWN,
) -> tuple[Path, Path]:
    """A cgroup root with this process's cgroup `own` in it, and a /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    delegated = root / own.lstrip("/")
    delegated.mkdir(parents=True)
    if unified:
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (delegated / "cgroup.controllers").write_text(offered + "\n")
    (delegated / "cgroup.subtree_control").write_text(enabled + "\n")
    (delegated / "cgroup.procs").write_text(f"{os.getpid()}\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"0::{own}\n" if unified else f"4:memory:{own}\n0::/\n")
    return root, self_cgroup


def test_delegated_cgroup_moves_conveyor_to_a_leaf_and_enables_memory_and_pids(
    tmp_path: Path,
) -> None:
    root, self_cgroup = _fake_root(tmp_path)
    tree = prepare_cgroups(root, self_cgroup, pid=4242)
    delegated = root / OWN.lstrip("/")
    assert tree.parent == delegated
    assert (delegated / "conveyor" / "cgroup.procs").read_text() == "4242"
    assert (delegated / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_a_cgroup_shared_with_other_processes_is_left_as_it_was(tmp_path: Path) -> None:
    root, self_cgroup = _fake_root(tmp_path)
    delegated = root / OWN.lstrip("/")
    (delegated / "conveyor" / "cgroup.procs").mkdir(parents=True)  # a write that fails
    (delegated / "cgroup.procs").write_text("1 4242\n")
    with pytest.raises(CgroupUnusableError, match="cannot enable memory and pids"):
        prepare_cgroups(root, self_cgroup, pid=4242)
    assert (delegated / "cgroup.procs").read_text() == "4242"  # moved back


def test_controllers_already_enabled_are_used_as_they_are(tmp_path: Path) -> None:
    root, self_cgroup = _fake_root(tmp_path, enabled="memory pids")
    tree = prepare_cgroups(root, self_cgroup, pid=4242)
    assert not (tree.parent / "conveyor").exists()


def test_a_job_cgroup_gets_the_memory_and_process_limits(tmp_path: Path) -> None:
    root, self_cgroup = _fake_root(tmp_path)
    tree = prepare_cgroups(root, self_cgroup, pid=4242)
    first = tree.create(Sandbox("bwrap", max_processes=64, max_memory_mb=512, max_cpu_s=9))
    second = tree.create(Sandbox("bwrap", max_processes=8))
    assert first.parent == second.parent == tree.parent
    assert first != second
    assert (first / "memory.max").read_text() == str(512 * 1024 * 1024)
    assert (first / "pids.max").read_text() == "64"
    assert not (second / "memory.max").exists()


@pytest.mark.parametrize(
    ("unified", "offered", "said"),
    [
        (False, "memory pids", "is not the cgroup v2 unified hierarchy (v1 or hybrid)"),
        (True, "cpu memory", "does not offer pids"),
        (True, "cpu io", "does not offer memory, pids"),
    ],
)
def test_no_usable_cgroup_v2_says_why(
    tmp_path: Path, unified: bool, offered: str, said: str
) -> None:
    root, self_cgroup = _fake_root(tmp_path, unified=unified, offered=offered)
    with pytest.raises(CgroupUnusableError, match=re.escape(said)):
        prepare_cgroups(root, self_cgroup, pid=4242)


def test_a_cgroup_not_there_or_not_delegated_is_unusable(tmp_path: Path) -> None:
    root, self_cgroup = _fake_root(tmp_path)
    self_cgroup.write_text("0::/system.slice/elsewhere.service\n")
    with pytest.raises(CgroupUnusableError, match="is not writable"):
        prepare_cgroups(root, self_cgroup, pid=4242)
    self_cgroup.write_text("1:name=systemd:/\n")
    with pytest.raises(CgroupUnusableError, match="has no cgroup v2 entry"):
        prepare_cgroups(root, self_cgroup, pid=4242)


def test_this_host_answers_a_tree_or_a_reason() -> None:
    tree = find_cgroups()
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        assert tree is not None or reason()
    else:  # cgroup v1 or hybrid (this project's CI machine): rlimits
        assert tree is None
        assert "is not the cgroup v2 unified hierarchy" in str(reason())


@requires_bwrap
def test_the_shell_puts_the_step_in_its_cgroup_before_bwrap_starts(tmp_path: Path) -> None:
    cgroup = tmp_path / "job-cgroup"  # a plain folder: the shell writes its pid into it
    cgroup.mkdir()
    argv = sandbox_command(
        Sandbox("bwrap", max_processes=64, max_memory_mb=512, max_cpu_s=30),
        ["bash", "-c", "ulimit -t; ulimit -u; ulimit -v"],
        workspace=str(tmp_path),
        cwd=str(tmp_path),
        cgroup=str(cgroup),
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    assert int((cgroup / "cgroup.procs").read_text()) > 0
    # CPU seconds stay an rlimit; processes and memory are the cgroup's, not rlimits
    cpu, processes, memory_kb = done.stdout.split()
    assert (cpu, memory_kb) == ("30", "unlimited"), done
    assert processes != "64"  # the host's own limit, not the job's


class _Lines:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, stream: Stream, lines: Sequence[str]) -> None:
        self.texts.extend(lines)


@requires_bwrap
async def test_a_sandboxed_step_gets_its_limits_where_this_host_keeps_them(
    tmp_path: Path,
) -> None:
    sandbox = Sandbox("bwrap", max_processes=64, max_memory_mb=512, max_cpu_s=30)
    script = "ulimit -t; ulimit -u; ulimit -v; cat /proc/self/cgroup"
    spec = StepSpec(script, {"PATH": os.environ["PATH"]}, tmp_path, sandbox=sandbox)
    lines = _Lines()
    result = await LocalRunner(grace_s=0.3, groups=ProcessGroups()).run_step(spec, lines)
    assert result.exit_code == 0, lines.texts
    cpu, processes, memory_kb, *cgroups = lines.texts
    assert cpu == "30"
    if find_cgroups() is None:  # rlimits (this project's CI machine)
        assert (processes, memory_kb) == ("64", str(512 * 1024))
    else:
        assert (processes != "64", memory_kb) == (True, "unlimited")
        assert any("/job-" in line for line in cgroups), cgroups
