"""The flusher's lease on a real Redis: exclusive, stale holders taken over, loss detected."""

from __future__ import annotations

import socket
import subprocess
import uuid

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
