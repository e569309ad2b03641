"""`conveyor serve [-c conveyor.toml] [--host H] [--port P]`: the long-running server.

One chain: make the process non-dumpable (same-user processes, jobs included, cannot read
its /proc files: environ, memory, fds) -> load settings (secrets from the environment; any
problem exits 2 before anything starts) -> configure logging once (JSON, every secret
masked) -> check the job sandbox (`[sandbox] mode = "bwrap"`, the default, must work or the
server refuses to start; `"none"` logs a warning at every start) -> open the store and lock the
home (one server per home) -> build the app -> run uvicorn programmatically (uvloop,
httptools, its access log off, no logging set-up of its own). SIGTERM/SIGINT make uvicorn
stop accepting and run the app's shutdown: running jobs get `server.shutdown_grace`, then
are canceled (process groups killed); the store is closed last. The bound address is logged
as `server.listening` (port 0 picks a free port). The listening socket is never
inheritable: uvloop does not close descriptors when it starts a process, so an inheritable
one would reach every job (which could accept the API's requests, and would hold the port
after a crash).
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import click
import structlog

from conveyor.commands.hostguard import bwrap_problem, make_undumpable
from conveyor.commands.options import config_option
from conveyor.errors import ConfigError, ConveyorError, Problem
from conveyor.settings import Settings

__all__ = ["resolve_home", "serve"]

log = structlog.get_logger(__name__)

_GRACEFUL_HTTP_S = 5  # open connections (SSE followers) get this long to finish
_GIL_SWITCH_S = 0.001  # how long a thread keeps the GIL while the loop waits for it


@click.command()
@config_option("Settings file.")
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option("--port", type=int, default=None, help="Port (default: server.port; 0: any).")
def serve(config_path: Path, host: str | None, port: int | None) -> None:
    """Serve webhooks, the runs API and the pipeline monitor."""
    import uvicorn

    from conveyor.logconfig import configure_logging
    from conveyor.monitor.collector import Collector
    from conveyor.server.app import create_app
    from conveyor.server.protocol import head_deadline_protocol
    from conveyor.settings import held_secret_values, load_settings
    from conveyor.store import open_store, open_store_url
    from conveyor.store.locks import lock_database, lock_home
    from conveyor.store.paths import ensure_home

    make_undumpable()
    env = dict(os.environ)
    settings = load_settings(config_path, env)
    configure_logging(json=True, secrets=held_secret_values(settings, env))
    check_sandbox(settings, config_path)
    home = resolve_home(settings, config_path, env)
    url = settings.secrets.store_url
    if url is None:
        store = open_store(home)
    else:  # runs in the database; run folders, mirrors and the lock stay in `home`
        ensure_home(home)
        store = open_store_url(url)
    try:
        lock_home(home)
        if url is not None:
            lock_database(url)
        app = create_app(settings, store=store, env=env, home=home, collector=Collector())
        sock = _bind(host or settings.server.host, settings.server.port if port is None else port)
        bound_host, bound_port = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            loop="uvloop",
            # httptools, closing connections whose request head is not complete in time
            http=head_deadline_protocol(settings.server.request_head_timeout),
            access_log=False,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=_GRACEFUL_HTTP_S,
        )
        server = uvicorn.Server(config)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's way, so collections during requests scan only per-request objects.
        gc.collect()
        gc.freeze()
        # Store writes run in threads; one holding the GIL kept the event loop waiting up to
        # CPython's default 5 ms each time (a p99 of 8-9 ms while the monitor's first tick
        # was written; 2.75 ms at 1 ms, docs/benchmarks.md).
        sys.setswitchinterval(_GIL_SWITCH_S)
        log.info("server.listening", host=bound_host, port=bound_port, home=str(home))
        with _absorb_stop_signals():
            server.run(sockets=[sock])
        if not server.started:
            raise ConveyorError("serve: the server did not start (see the log lines above)")
    finally:
        store.close()
        log.info("server.stopped")


def resolve_home(settings: Settings, config_path: Path, env: Mapping[str, str]) -> Path:
    """`server.home` (relative to the settings file), else CONVEYOR_HOME or ./.conveyor."""
    from conveyor.store.paths import home_dir

    if settings.server.home is not None:
        return (config_path.parent / settings.server.home).resolve()
    return home_dir(Path.cwd(), env)


@contextmanager
def _absorb_stop_signals() -> Iterator[None]:
    """uvicorn handles SIGTERM/SIGINT itself (graceful shutdown) and then re-raises the
    signal with the handler it found; this handler makes that a no-op so the store is
    still closed and the process exits 0 after a clean shutdown."""
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            log.info("server.signal_received", signal=signal.Signals(received[0]).name)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        sock.close()
        raise ConveyorError(
            f"serve: cannot listen on {host}:{port} ({exc.strerror}); "
            "choose another --port or stop the other server"
        ) from None
    return sock  # not inheritable (PEP 446 default): no job may hold it (module docstring)


def check_sandbox(settings: Settings, config_path: Path) -> None:
    """`[sandbox] mode = "bwrap"`: bubblewrap must start a sandbox here, or ConfigError,
    and where the job limits live is logged (engine.cgroups); `"none"`: a warning (jobs
    then share the server's view of the host)."""
    if settings.sandbox.mode == "none":
        log.warning(
            "server.sandbox_off",
            detail='[sandbox] mode = "none": jobs run unconfined, as the server user',
        )
        return
    problem = bwrap_problem()
    if problem is not None:
        raise ConfigError(
            [
                Problem(
                    str(config_path),
                    0,
                    0,
                    f'sandbox.mode: "bwrap" cannot run here ({problem}); install the Debian '
                    "package bubblewrap and allow user namespaces, or write "
                    '`mode = "none"` in [sandbox] to run jobs unconfined',
                )
            ]
        )
    sandbox = settings.sandbox
    if sandbox.max_processes is not None or sandbox.max_memory_mb is not None:
        from conveyor.engine.cgroups import find_cgroups, reason

        tree = find_cgroups()  # here, before any job: it may move the server to a leaf
        where = f"cgroup v2 under {tree.parent}" if tree else f"rlimits ({reason()})"
        log.info("server.sandbox_limits", detail=f"job processes and memory: {where}")
