"""More than one process answering HTTP in `ursa serve`.

One process can hold the interpreter lock at a time, and in embedded mode that one process also
runs the flush and chDB, so `ursa serve` starts `HTTP_PROCESSES - 1` helper processes on the same
port (`bind_listeners`, `HttpHelpers`). A helper shares Redis, the app database and the secrets
with the main process, and reaches ClickHouse through its internal port (`RemoteClickHouse`).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from app.server.startup import ConfigurationError
from app.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0
CHILD_MODULE = "app.server.http_child"  # what a helper process runs


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to `host:port`, with `SO_REUSEPORT` when more than one.

    All are bound by the main process, so a port already in use is reported once, at start; the
    kernel spreads connections over the processes listening, so a helper gets none before it is
    ready.

    A socket that joins a `SO_REUSEPORT` group would join a group another program (of the same
    user) already listens with, so the port is first bound alone: in use, it fails as usual.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = _listener(family, host, port, reuse_port=False)
    if count == 1:
        return [probe]
    port = probe.getsockname()[1]  # the one picked for port 0
    probe.close()
    return [_listener(family, host, port, reuse_port=True) for _ in range(count)]


def _listener(
    family: socket.AddressFamily, host: str, port: int, reuse_port: bool
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"{host}:{port} is already in use (set HOST/PORT)") from exc
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock  # uvicorn listens once its process serves: until then, connections go elsewhere


@dataclass
class HttpHelpers:
    """The helper processes of `ursa serve`, each serving one of `listeners`.

    Helpers run in their own process session, so a terminal's Ctrl-C reaches the main process
    only and shutdown keeps its order: the main process tells the helpers to stop (SIGTERM: they
    stop accepting and finish open requests) before it flushes the buffer and stops Redis. A
    helper whose main process has gone stops by itself.
    """

    settings: Settings
    listeners: list[socket.socket]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    def start(self) -> None:
        # A helper reads its settings as this process did (same environment, working directory
        # and data dir, so the same generated secrets), with the Redis this process started.
        env = {**os.environ, "REDIS_URL": self.settings.REDIS_URL}
        for listener in self.listeners:
            process = subprocess.Popen(
                [sys.executable, "-m", CHILD_MODULE, str(listener.fileno()), str(os.getpid())],
                env=env,
                pass_fds=(listener.fileno(),),
                start_new_session=True,
            )
            self.processes.append(process)
            listener.close()  # the helper has its copy; this process never accepts on it
        if self.processes:
            log.info("%d more HTTP processes started", len(self.processes))

    def failure(self) -> str | None:
        """Why a helper is gone, if one is."""
        for process in self.processes:
            code = process.poll()
            if code is not None:
                return f"an HTTP process of ursa serve (pid {process.pid}) exited with {code}"
        return None

    def terminate(self) -> None:
        """Tell every helper to stop accepting and finish what it has (does not wait)."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()

    def stop(self) -> None:
        self.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("HTTP process %d did not stop in time; killed", process.pid)
                process.kill()
                process.wait()
