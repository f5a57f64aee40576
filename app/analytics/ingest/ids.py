"""Compact, time-ordered 64-bit ids: 44 bits of Unix milliseconds, then 20 random bits.

Tracker-minted ids use the same layout (16 hex digits), so a client id and a server id sort
together and fit a `UInt64` column.
"""

from __future__ import annotations

import random
import time

RANDOM_BITS = 20
# Ids only need to be unlikely to collide, not unpredictable: a fast non-cryptographic source
# (the system one costs a syscall per id on the ingest path).
_random = random.Random()
_RANDOM_MASK = (1 << RANDOM_BITS) - 1
_TIME_MASK = (1 << 44) - 1


def make_id(millis: int | None = None, low: int | None = None) -> int:
    """An id for the given time (default: now) with `low` (default: random) in the low bits."""
    if millis is None:
        millis = time.time_ns() // 1_000_000
    if low is None:
        low = _random.getrandbits(RANDOM_BITS)
    return ((millis & _TIME_MASK) << RANDOM_BITS) | (low & _RANDOM_MASK)


def id_millis(value: int) -> int:
    """The Unix milliseconds an id was minted for."""
    return value >> RANDOM_BITS


def parse_hex_id(text: str) -> int | None:
    """Parse a 16-hex-digit id from a client; None when malformed or zero."""
    if len(text) != 16:
        return None
    try:
        value = int(text, 16)
    except ValueError:
        return None
    return value or None
