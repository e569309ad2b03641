"""Starting one step's process: its own process group, its standard streams and nothing else.

`start_child` runs `subprocess.Popen` (close_fds: the child gets stdin from /dev/null, two
pipes as stdout and stderr, and no other descriptor of conveyor's), puts the two pipes on
the running loop (`connect_read_pipe`) and sees the process end through a pidfd on the
loop (a thread waits for it where the kernel has no pidfds, Linux < 5.3).

Group and session: the child always leads its own process group (one signal stops the whole
tree). It gets its own session too when conveyor has a controlling terminal, so that a job
can neither read from that terminal nor push input into it (TIOCSTI through /dev/tty, which
the sandbox's /dev has). Without a terminal (the server, CI, a pipe) a session would detach
from nothing, and it is not free: `setsid` (each new session is also a new scheduler
autogroup where those are on, Linux's default) measured +1.4 ms per bare step and +5 to 7 ms
per sandboxed step on a loaded machine (docs/benchmarks.md, the sandbox's figure).

Why not `loop.subprocess_exec`: uvloop (what `conveyor serve` runs on) makes the child's
stream ends (a socketpair end per output, its /dev/null) and its exec-error pipe inheritable
for the spawn; libuv dup2s them onto 0, 1 and 2, but the originals stay open across the exec
and nothing closes any other descriptor (uvloop has no `close_fds`), so every job held
copies of its own streams. The standard loop would need a child watcher besides. Here the
same code runs on both loops.

The receiver is anything with `pipe_data_received(fd, data)`, `pipe_connection_lost(fd,
exc)` and `process_exited()` (the runner's step protocol). This module does not signal,
time out or read lines (runner.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from conveyor.git.policy import has_terminal  # one rule for every process conveyor starts

__all__ = ["Child", "ChildReceiver", "has_terminal", "start_child"]


class ChildReceiver(Protocol):
    def pipe_data_received(self, fd: int, data: bytes) -> None: ...

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None: ...

    def process_exited(self) -> None: ...


class _Pipe(asyncio.Protocol):
    """One of the child's output pipes, forwarded to the receiver with its fd number."""

    __slots__ = ("_fd", "_receiver")

    def __init__(self, receiver: ChildReceiver, fd: int) -> None:
        self._receiver = receiver
        self._fd = fd

    def data_received(self, data: bytes) -> None:
        self._receiver.pipe_data_received(self._fd, data)

    def eof_received(self) -> bool:
        return False  # the transport closes and calls connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self._receiver.pipe_connection_lost(self._fd, exc)


class Child:
    """A started step process (the leader of its own group) and its two pipes' transports.
    `close()` lets go of the pipes and of the exit watch (not of the process)."""

    __slots__ = ("_loop", "_pidfd", "_receiver", "pipes", "proc")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: subprocess.Popen[bytes],
        receiver: ChildReceiver,
    ) -> None:
        self._loop = loop
        self.proc = proc
        self._receiver = receiver
        self.pipes: list[asyncio.BaseTransport] = []
        self._pidfd = -1

    def get_pid(self) -> int:
        return self.proc.pid

    def get_returncode(self) -> int | None:
        return self.proc.returncode

    def _watch(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):  # no pidfds here: a thread waits instead
            waiting = self._loop.run_in_executor(None, self.proc.wait)
            waiting.add_done_callback(lambda _: self._receiver.process_exited())
            return
        self._loop.add_reader(self._pidfd, self._exited)

    def _exited(self) -> None:
        self._unwatch()
        self.proc.poll()  # reaps it: its exit status
        self._receiver.process_exited()

    def _unwatch(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.close()
        if self._pidfd >= 0 and self.proc.poll() is not None:  # reaped here: done watching
            self._unwatch()


async def start_child(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    receiver: ChildReceiver,
) -> Child:
    """Start `argv` in its own group (module docstring). OSError when it cannot start."""
    loop = asyncio.get_running_loop()
    session = has_terminal()
    proc = subprocess.Popen(  # noqa: ASYNC220 (asyncio's subprocess_exec forks here too)
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,  # the default, said: nothing but the three streams
        start_new_session=session,
        process_group=None if session else 0,  # own group: one signal stops the whole tree
    )
    child = Child(loop, proc, receiver)
    try:
        child._watch()
        for fd, pipe in ((1, proc.stdout), (2, proc.stderr)):
            assert pipe is not None  # noqa: S101 (PIPE was asked for)
            transport, _ = await loop.connect_read_pipe(
                functools.partial(_Pipe, receiver, fd), pipe
            )
            child.pipes.append(transport)
    except BaseException:  # it runs, but nobody could read it: it must not live on
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        child.close()
        raise
    return child
