"""The flusher's lease on a real Redis: exclusive, stale holders taken over, loss detected."""

from __future__ import annotations

import socket
import subprocess
import uuid
from typing import Any

import pytest
import redis

from app.analytics.buffer.lease import Lease


@pytest.fixture
def client(redis_process):
    connection = redis.Redis.from_url(redis_process.url)
    yield connection
    connection.close()


def _key() -> str:
    return f"test:lease:{uuid.uuid4().hex}"


def test_only_one_holder(client):
    key = _key()
    first, second = Lease(client, key, 10_000), Lease(client, key, 10_000)
    assert first.acquire()
    assert not second.acquire()  # this process is alive: no take-over
    second.release()  # not the holder: nothing happens
    assert client.get(key) == first.value.encode()
    first.release()
    assert second.acquire()


def test_dead_holder_on_this_host_is_taken_over(client):
    key = _key()
    dead = subprocess.Popen(["true"])
    dead.wait()
    client.set(key, f"{socket.gethostname()}:{dead.pid}:stale", px=60_000)
    lease = Lease(client, key, 10_000)
    assert lease.acquire()
    assert client.get(key) == lease.value.encode()


def test_holder_on_another_host_waits_for_the_ttl(client):
    key = _key()
    client.set(key, "elsewhere:1:x", px=60_000)
    assert not Lease(client, key, 10_000).acquire()


def test_lost_lease_is_noticed(client):
    key = _key()
    lease = Lease(client, key, 10_000)
    assert lease.acquire()
    assert lease.renew()
    client.set(key, "someone-else")  # expired and taken by another flusher
    assert not lease.renew()
    lease.release()
    assert client.get(key) == b"someone-else"


def test_lease_this_process_failed_to_release_is_taken_over(client):
    key = _key()
    abandoned = Lease(client, key, 60_000)
    assert abandoned.acquire()
    successor = Lease(client, key, 10_000)
    assert not successor.acquire()  # the holder is a live drain of this process

    def redis_down(**_: object) -> None:
        raise redis.ConnectionError("Redis went away")

    abandoned._release = redis_down  # type: ignore[assignment]
    with pytest.raises(redis.ConnectionError):
        abandoned.release()
    assert client.get(key) == abandoned.value.encode()
    assert successor.acquire()


class _SeenBetweenSetAndMark(redis.Redis):
    """A client whose successful SET lets a second drain of this process try at once: the
    moment after Redis has our value and before the lease has noted it."""

    rival: Lease | None = None
    rival_got_it: bool | None = None

    def set(self, *args: Any, **kwargs: Any) -> Any:
        done = super().set(*args, **kwargs)
        if done and self.rival is not None:
            rival, self.rival = self.rival, None
            self.rival_got_it = rival.acquire()
        return done


def test_a_drain_on_another_thread_never_takes_a_lease_being_acquired(redis_process):
    key = _key()
    racing = _SeenBetweenSetAndMark(
        connection_pool=redis.ConnectionPool.from_url(redis_process.url)
    )
    first = Lease(racing, key, 10_000)
    racing.rival = Lease(redis.Redis.from_url(redis_process.url), key, 10_000)
    assert first.acquire()
    assert racing.rival_got_it is False  # our own live drain, not one that failed to release
    assert racing.get(key) == first.value.encode()
    racing.close()


def test_a_hash_is_written_only_while_the_lease_is_held(client):
    key, record = _key(), _key()
    lease = Lease(client, key, 10_000)
    assert lease.acquire()
    client.hset(record, "stale", "x")
    assert lease.hset_if_held(record, {"first": "1-0", "token": "t"})
    assert client.hgetall(record) == {b"first": b"1-0", b"token": b"t"}  # replaced whole
    client.set(key, "someone-else")
    assert not lease.hset_if_held(record, {"first": "2-0", "token": "u"})
    assert client.hgetall(record) == {b"first": b"1-0", b"token": b"t"}
