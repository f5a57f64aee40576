"""A worker's watchdog notices a dependency that stays down, and forgives a short outage."""

from __future__ import annotations

import threading

import redis

from app.tasks.watchdog import Watchdog, supervise
from tests.conftest import RedisProcess


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_a_dependency_down_past_the_grace_is_named(tmp_path):
    server = RedisProcess(tmp_path / "redis")
    server.start()
    now = [0.0]
    watchdog = Watchdog(
        {"redis": lambda: _ping(server.url)}, grace_seconds=30, clock=lambda: now[0]
    )
    try:
        assert watchdog.check() is None
        server.kill()
        assert watchdog.check() is None  # down, within the grace
        now[0] = 29.0
        assert watchdog.check() is None
        now[0] = 30.0
        assert watchdog.check() == "redis"
    finally:
        server.stop()


def test_a_short_outage_is_forgiven(tmp_path):
    server = RedisProcess(tmp_path / "redis")
    server.start()
    now = [0.0]
    watchdog = Watchdog(
        {"redis": lambda: _ping(server.url)}, grace_seconds=30, clock=lambda: now[0]
    )
    try:
        server.kill()
        assert watchdog.check() is None
        server.start()
        now[0] = 20.0
        assert watchdog.check() is None  # back: the failure clock resets
        server.kill()
        now[0] = 45.0
        assert watchdog.check() is None  # down again for 0 s, not 45
    finally:
        server.stop()


def test_supervise_returns_the_failing_dependency_or_none_when_stopped():
    def broken() -> None:
        raise ConnectionError("no route")

    stop = threading.Event()
    assert supervise(stop, Watchdog({"clickhouse": broken}, grace_seconds=0.05), 0.02) == (
        "clickhouse"
    )
    stop.set()
    assert supervise(stop, Watchdog({"clickhouse": broken}, grace_seconds=60), 0.02) is None
