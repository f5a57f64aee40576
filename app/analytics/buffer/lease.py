"""A Redis lease that one flusher holds at a time.

The value names its holder (`host:pid:nonce`). Renewal and release only touch the lease while
the holder still owns it (compare-and-set scripts), so a flusher that lost its lease — it
stalled past the TTL — notices and stops instead of running next to its successor. A lease
left by a dead process on the same host, or by a drain of this process that could not release
it (Redis was down), is taken over at once rather than after the TTL.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Write a hash only while holding the lease (and renew it): a holder that stalled past the TTL
# finds its successor's value and writes nothing.
_HSET_IF_HELD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


# Lease values held by live drains of this process (several worker threads share a process):
# a value with our pid that is not in here was left by a drain that could not release it.
_HELD_HERE: set[str] = set()


class Lease:
    def __init__(self, client: redis.Redis, key: str, ttl_ms: int) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.host = socket.gethostname()
        self.value = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex}"
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._take_over = client.register_script(_TAKE_OVER)
        self._hset_if_held = client.register_script(_HSET_IF_HELD)

    def acquire(self) -> bool:
        # Marked as held before it is taken: a drain on another thread that reads our value
        # between the SET and the mark must see a live holder, not one to take over.
        _HELD_HERE.add(self.value)
        acquired = False
        try:
            acquired = bool(self.client.set(self.key, self.value, nx=True, px=self.ttl_ms))
            if not acquired:
                holder = self.client.get(self.key)
                if isinstance(holder, bytes) and self._holder_is_dead(holder.decode()):
                    acquired = bool(
                        self._take_over(keys=[self.key], args=[holder, self.value, self.ttl_ms])
                    )
        finally:
            if not acquired:
                _HELD_HERE.discard(self.value)
        return acquired

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours."""
        return bool(self._renew(keys=[self.key], args=[self.value, self.ttl_ms]))

    def hset_if_held(self, key: str, mapping: dict[str, str | bytes]) -> bool:
        """Replace hash `key` with `mapping` and renew the lease, in one step, if still ours."""
        fields = [part for pair in mapping.items() for part in pair]
        return bool(
            self._hset_if_held(keys=[self.key, key], args=[self.value, self.ttl_ms, *fields])
        )

    def release(self) -> None:
        _HELD_HERE.discard(self.value)
        self._release(keys=[self.key], args=[self.value])

    def _holder_is_dead(self, holder: str) -> bool:
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self.host or not pid_text.isdigit():
            return False  # another machine: only the TTL can tell
        if int(pid_text) == os.getpid():
            return holder not in _HELD_HERE
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
