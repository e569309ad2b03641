"""Step runners: run one step's shell text as a process and stream its output lines.

`StepRunner` is the boundary the scheduler talks to; `LocalRunner` runs steps on this host.
Each step is `bash -eo pipefail -c SCRIPT` (or `sh -e -c SCRIPT`) leading its own process
group (and session, when conveyor has a terminal: engine.child), so its process group holds
everything it starts and one signal stops the whole tree.

Output: stdout and stderr are read concurrently in large chunks (never a per-line await),
decoded incrementally as UTF-8 with replacement, split into lines; a last line without a
newline is still a line, and a line longer than `MAX_LINE_CHARS` is cut with a marker and
the rest of it dropped, so output volume never grows memory.

Sandbox: a step whose spec carries a sandbox that is on runs inside bubblewrap
(engine.sandbox builds the argv); bwrap leads the group, so everything above holds, except
that the polite SIGTERM goes to the group's other members (bwrap's monitor would die of it
and take the job down without its grace), and that once bwrap exited the kernel is already
killing the rest (its PID namespace dies with it): the runner waits for the pipes to close
instead of polling /proc for the group (`_sandbox_ended`: milliseconds per step).
The process itself is started by engine.child (its three standard streams and nothing else).

Stopping (engine.groups): SIGTERM to the group, `grace_s`, SIGKILL, then wait until no live
member is left.
Trap: a step that ran `sleep 1000 &` keeps the pipes open after its shell exits; so when the
leader exits, the rest of its group is stopped too and the pipes are drained with a short
deadline. Cancelling the task that awaits `run_step` stops the group before the
CancelledError propagates. Live groups are kept in a `ProcessGroups` registry
(engine.groups) so a signal to conveyor can stop them all, and reported to a `ProcessBook`
(the store, or the scheduler's journal) for crash recovery.
This module does not decide statuses or retries (status.py) nor write records (scheduler).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import os
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conveyor.engine.child import Child, start_child
from conveyor.engine.groups import (  # the first three re-exported: callers import them here
    LIVE_GROUPS,
    ProcessGroups,
    group_is_alive,
    signal_group,
    stop_group,
)
from conveyor.engine.sandbox import NO_SANDBOX, Sandbox, sandbox_command
from conveyor.model import Stream
from conveyor.store.base import LiveProcess, ProcessBook

__all__ = [
    "LIVE_GROUPS",
    "MAX_LINE_CHARS",
    "LineSink",
    "LocalRunner",
    "ProcessGroups",
    "StepResult",
    "StepRunner",
    "StepSpec",
    "group_is_alive",
    "pidfd_child_watcher",
    "shell_command",
    "step_command",
]

MAX_LINE_CHARS = 64 * 1024
CUT_MARKER = " [line cut at 64 KiB]"
_DRAIN_S = 1.0  # how long pipes may stay open after the group was stopped

# Receives a batch of decoded lines of one stream (one call per chunk read, not per line).
LineSink = Callable[[Stream, Sequence[str]], None]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step to run. `deadline` is absolute `time.monotonic()` (None: no limit).
    `sandbox` on: confined to `workspace` (writable), with `hidden` folders emptied."""

    script: str
    env: Mapping[str, str]
    cwd: Path
    shell: str = "bash"
    deadline: float | None = None
    run_id: str = ""
    job: str = ""
    sandbox: Sandbox = NO_SANDBOX
    workspace: Path | None = None
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """`exit_code` is None when the step was killed for its deadline (`timed_out`) or could
    not start (`error` says why)."""

    exit_code: int | None
    timed_out: bool = False
    error: str | None = None

    @property
    def is_success(self) -> bool:
        return self.exit_code == 0


class StepRunner(Protocol):
    async def run_step(self, spec: StepSpec, on_lines: LineSink) -> StepResult:
        """Run one step to its end, its deadline, or until the awaiting task is cancelled
        (then every process it started is stopped and CancelledError propagates)."""
        ...


def shell_command(shell: str, script: str) -> list[str]:
    """argv for a step: bash with -eo pipefail, sh with -e (any other shell: -c only)."""
    if shell == "bash":
        return ["bash", "-eo", "pipefail", "-c", script]
    if shell == "sh":
        return ["sh", "-e", "-c", script]
    return [shell, "-c", script]


@functools.cache
def _find_tool(name: str) -> str | None:
    return shutil.which(name)


def step_command(spec: StepSpec, cgroup: str | None = None) -> list[str]:
    """The argv of `spec`: its shell command, inside the sandbox when that is on (in its
    own `cgroup` when given). OSError (ENOENT) when the sandbox is on and bubblewrap is not
    installed."""
    command = shell_command(spec.shell, spec.script)
    if not spec.sandbox.is_on:
        return command
    bwrap = _find_tool("bwrap")
    if bwrap is None:
        raise FileNotFoundError(2, "bwrap is not installed (Debian package bubblewrap)")
    return sandbox_command(
        spec.sandbox,
        command,
        workspace=str(spec.workspace or spec.cwd),
        cwd=str(spec.cwd),
        hidden=spec.hidden,
        bwrap=bwrap,
        prlimit=_find_tool("prlimit") or "prlimit",
        cgroup=cgroup,
    )


# ---------------------------------------------------------------- output


class _LineSplitter:
    """Turns chunks of bytes into complete lines with bounded memory: at most one chunk plus
    `MAX_LINE_CHARS` of an unfinished line is held."""

    __slots__ = ("_decoder", "_dropping", "_parts", "_size")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._size = 0
        self._dropping = False  # the current line was already emitted cut: skip to its end

    def feed(self, chunk: bytes, *, final: bool = False) -> list[str]:
        text = self._decoder.decode(chunk, final=final)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        rest = lines.pop()  # after the last newline: an unfinished line
        if lines:
            if self._dropping:  # the first piece ends a line that was already emitted cut
                del lines[0]
                self._dropping = False
            elif self._parts:
                self._parts.append(lines[0])
                lines[0] = "".join(self._parts)
                self._parts, self._size = [], 0
            if lines and max(map(len, lines)) > MAX_LINE_CHARS:
                lines = [_cut(line) for line in lines]
        if rest and not self._dropping:
            self._parts.append(rest)
            self._size += len(rest)
            if self._size > MAX_LINE_CHARS:
                lines.append(_cut("".join(self._parts)))
                self._parts, self._size, self._dropping = [], 0, True
        if final and self._parts:
            lines.append("".join(self._parts))
            self._parts, self._size = [], 0
        return lines


def _cut(line: str) -> str:
    if len(line) > MAX_LINE_CHARS:
        return line[:MAX_LINE_CHARS] + CUT_MARKER
    return line


class _StepProtocol:
    """engine.child's receiver: takes a step's output as it arrives (no await per chunk) and
    reports the leader's exit separately from the pipes closing — they differ when a
    background child holds a pipe, which is exactly when the rest of the group must be
    stopped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_lines: LineSink) -> None:
        self._on_lines = on_lines
        self._splitters = {1: _LineSplitter(), 2: _LineSplitter()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: BaseException | None = None  # raised by on_lines; re-raised by run_step
        self.broken: asyncio.Future[None] = loop.create_future()  # set with `error`

    def _emit(self, fd: int, lines: list[str]) -> None:
        if lines and self.error is None:
            try:
                self._on_lines(_STREAMS[fd], lines)
            except Exception as exc:  # noqa: BLE001 (a callback cannot raise into the loop: keep it)
                self.error = exc
                if not self.broken.done():  # the output has nowhere to go: stop the step
                    self.broken.set_result(None)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._emit(fd, self._splitters[fd].feed(data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        splitter = self._splitters.pop(fd, None)
        if splitter is not None:
            self._emit(fd, splitter.feed(b"", final=True))
        if not self._splitters and not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


_STREAMS = {1: Stream.STDOUT, 2: Stream.STDERR}


# ---------------------------------------------------------------- the local runner


@dataclass(slots=True)
class LocalRunner:
    """Runs steps as local processes (started by engine.child, which hands the protocol the
    leader's exit on its own: a backgrounded child may hold the pipes open forever). `store`
    (optional) learns every live group."""

    store: ProcessBook | None = None
    grace_s: float = 5.0
    groups: ProcessGroups = field(default_factory=lambda: LIVE_GROUPS)

    async def run_step(self, spec: StepSpec, on_lines: LineSink) -> StepResult:
        sandbox = spec.sandbox
        if not (sandbox.is_on and sandbox.has_cgroup_limits):
            return await self._run_step(spec, on_lines, None)
        from conveyor.engine.cgroups import find_cgroups  # sandboxed only: off run's start-up

        tree = find_cgroups()
        if tree is None:  # no limits, or rlimits (prlimit) for them
            return await self._run_step(spec, on_lines, None)
        try:
            cgroup = tree.create(sandbox)
        except OSError as exc:
            return StepResult(None, error=f"cannot make the job's cgroup: {exc.strerror}")
        try:
            return await self._run_step(spec, on_lines, str(cgroup))
        finally:
            await asyncio.shield(tree.remove(cgroup))

    async def _run_step(self, spec: StepSpec, on_lines: LineSink, cgroup: str | None) -> StepResult:
        loop = asyncio.get_running_loop()
        protocol = _StepProtocol(loop, on_lines)
        try:
            argv = step_command(spec, cgroup)
            spawn = asyncio.ensure_future(
                start_child(argv, cwd=spec.cwd, env=spec.env, receiver=protocol)
            )
            # Shielded: a cancel while the process starts would leave it unwatched, and a
            # sandbox's job, not yet tied to bwrap's life, would live on.
            child = await asyncio.shield(spawn)
        except OSError as exc:
            what = "the sandbox (bwrap)" if spec.sandbox.is_on else spec.shell
            return StepResult(None, error=f"cannot start {what}: {exc.strerror}")
        except asyncio.CancelledError:
            await _abandon(spawn, protocol, spares_leader=spec.sandbox.is_on)
            raise
        pgid = child.get_pid()
        timed_out = False
        try:
            self._register(spec, pgid)  # a store that fails here must not leave the group
            timeout = None if spec.deadline is None else max(0.0, spec.deadline - time.monotonic())
            ended, _ = await asyncio.wait(
                (protocol.exited, protocol.broken),
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            timed_out = not ended
            if spec.sandbox.is_on and protocol.exited.done():
                await _sandbox_ended(pgid, protocol)
            else:
                # The leader is gone, out of time, or its output cannot be kept: nothing of
                # its group may outlive it.
                grace_s = self.grace_s if timed_out or protocol.error is not None else 0.2
                await stop_group(pgid, grace_s, spares_leader=spec.sandbox.is_on)
                await _settle(protocol)
        except BaseException:  # cancellation included: stop the group, then propagate
            await asyncio.shield(self._stop(pgid, protocol, spares_leader=spec.sandbox.is_on))
            raise
        finally:
            child.close()
            self._unregister(spec, pgid)
        if protocol.error is not None:
            raise protocol.error
        if timed_out:
            return StepResult(None, timed_out=True)
        code = child.get_returncode()
        code = -signal.SIGKILL if code is None else code
        # Killed by a signal: report it the way shells do (128 + signal number).
        return StepResult(code if code >= 0 else 128 - code)

    async def _stop(self, pgid: int, protocol: _StepProtocol, *, spares_leader: bool) -> None:
        await stop_group(pgid, self.grace_s, spares_leader=spares_leader)
        await _settle(protocol)

    def _register(self, spec: StepSpec, pgid: int) -> None:
        self.groups.pgids.add(pgid)
        if self.store is not None and spec.run_id:
            from conveyor.engine.recovery import process_start_ticks

            ticks = process_start_ticks(pgid) or 0
            self.store.add_process(LiveProcess(spec.run_id, spec.job, pgid, ticks))

    def _unregister(self, spec: StepSpec, pgid: int) -> None:
        self.groups.pgids.discard(pgid)
        if self.store is not None and spec.run_id:
            self.store.remove_process(spec.run_id, pgid)


async def _abandon(
    spawn: asyncio.Future[Child], protocol: _StepProtocol, *, spares_leader: bool
) -> None:
    """Stop the whole group of a step whose start was cancelled, once it has started."""
    try:
        child = await spawn
    except Exception:  # noqa: BLE001 (it did not start: nothing to stop)
        return
    await stop_group(child.get_pid(), 0.0, spares_leader=spares_leader)
    await _settle(protocol)
    child.close()


async def _sandbox_ended(pgid: int, protocol: _StepProtocol) -> None:
    """A sandbox whose monitor (the leader) exited: its namespace's init got SIGKILL with it
    (--die-with-parent), and the kernel kills everything else in the namespace; the pipes
    close once the last of them is gone. So no /proc scan and no polling: wait for the pipes
    (`_DRAIN_S`), then one SIGKILL for the group in case; only a sandbox that still holds its
    pipes after that is stopped the slow way (it cannot happen unless the kernel stalls)."""
    await _settle(protocol)
    if not protocol.closed.done():
        await stop_group(pgid, 0.0, spares_leader=True)
        await _settle(protocol)
    signal_group(pgid, signal.SIGKILL)


async def _settle(protocol: _StepProtocol) -> None:
    """Wait for the leader's exit status and the pipes' end of file. A process that escaped
    the group (its own setsid) may hold a pipe open: after `_DRAIN_S` it is abandoned."""
    await asyncio.wait([protocol.exited, protocol.closed], timeout=_DRAIN_S)


@contextlib.contextmanager
def pidfd_child_watcher() -> Iterator[None]:
    """On Python 3.11, asyncio's default child watcher starts a thread per process (each of
    git's: steps are started by engine.child, which watches its own pidfds), and each start
    waits for that thread to get the GIL: milliseconds per process on a busy machine. A
    pidfd watcher (Linux ≥ 5.3; Python ≥ 3.12's default) polls a file descriptor on the
    loop instead. The previous watcher is restored afterwards."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        yield
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # the kernel or a seccomp filter refuses pidfds: keep the default
        yield
        return
    previous = asyncio.get_child_watcher()
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():  # processes still running get no handler: exiting
            warnings.simplefilter("ignore", RuntimeWarning)
            asyncio.set_child_watcher(previous)  # closes `watcher` too (Python 3.11)
            watcher.close()
