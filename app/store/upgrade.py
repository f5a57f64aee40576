"""Keys that earlier releases wrote and this one no longer reads, deleted at migration."""

from __future__ import annotations

from typing import Any

import redis

from app.store import keys

BATCH = 1_000


def drop_retired_keys(client: redis.Redis) -> int:
    """Delete every key of the families in `keys.RETIRED`; return how many were deleted."""
    dropped = 0
    for prefix in keys.RETIRED:
        batch: list[Any] = []
        for key in client.scan_iter(match=f"{prefix}*", count=BATCH):
            batch.append(key)
            if len(batch) == BATCH:
                dropped += int(client.unlink(*batch))
                batch = []
        if batch:
            dropped += int(client.unlink(*batch))
    return dropped
