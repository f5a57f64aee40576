"""A worker's watchdog notices a dependency that stays down, and forgives a short outage."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from app.tasks.watchdog import Watchdog, supervise
from tests.conftest import RedisProcess


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    finally:
        client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server(tmp_path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis")
    process.start()
    yield process
    process.stop()


def test_a_dependency_down_past_the_grace_is_named(server):
    clock = Clock()
    watchdog = Watchdog({"redis": lambda: _ping(server.url)}, grace_seconds=30, clock=clock)
    assert watchdog.check() is None
    server.kill()
    assert watchdog.check() is None  # down, within the grace
    clock.now = 29.0
    assert watchdog.check() is None
    clock.now = 30.0
    assert watchdog.check() == "redis"


def test_a_short_outage_is_forgiven(server):
    clock = Clock()
    watchdog = Watchdog({"redis": lambda: _ping(server.url)}, grace_seconds=30, clock=clock)
    server.kill()
    assert watchdog.check() is None
    server.start()
    clock.now = 20.0
    assert watchdog.check() is None  # back: the failure clock resets
    server.kill()
    clock.now = 45.0
    assert watchdog.check() is None  # down again for 0 s, not 45


def test_supervise_returns_the_failing_dependency_or_none_when_stopped():
    def broken() -> None:
        raise ConnectionError("no route")

    stop = threading.Event()
    assert supervise(stop, Watchdog({"clickhouse": broken}, grace_seconds=0.05), 0.02) == (
        "clickhouse"
    )
    stop.set()
    assert supervise(stop, Watchdog({"clickhouse": broken}, grace_seconds=60), 0.02) is None
