"""Abuse caps of ingestion: how many events one client, or one site, may send per minute.

An event over a cap is answered 202 and dropped with `x-ursa-dropped: rate` (docs/architecture.md).
A real visitor sends a few events a minute; a script that floods a site, or fills someone else's
quota from one address, is cut off at the cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

WINDOW_SECONDS = 60.0


class MinuteCounter:
    """Hits per key in the current one-minute window; `allow` is False past `limit`.

    A limit of 0 turns the cap off. Counting is in process, in fixed windows: no Redis round trip
    on the hot path. With several web processes each applies the caps to what it receives, so
    the installation-wide cap is the per-process cap times the processes: precise enough for
    abuse, which is far above any real traffic. Client keys are IP addresses held in memory for
    the current minute only (never stored), as the visitor hash already needs them.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._window = -1
        self._counts: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> bool:
        if not self.limit:
            return True
        window = int(self._clock() // WINDOW_SECONDS)
        if window != self._window:
            self._window = window
            self._counts.clear()
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count <= self.limit
