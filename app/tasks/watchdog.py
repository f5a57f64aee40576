"""Let it crash: a worker (or the scheduler) that cannot reach what it works with exits, and the
platform (systemd, Kubernetes) starts a fresh one.

A worker whose Redis or ClickHouse is gone keeps its threads busy failing and retrying, and a
half-broken connection pool can outlive the outage; short outages (a Redis failover, a
ClickHouse restart) pass within the grace period unnoticed. The same `Watchdog` answers the
process's health checks (docs/operations.md, "Distributed mode").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 5.0
CHECK_OVERDUE_SECONDS = 2 * PROBE_INTERVAL_SECONDS  # since the last check: not ready
UNHEALTHY_EXIT_CODE = 3


@dataclass
class Watchdog:
    """Probes by dependency name; a probe raises when its dependency cannot be reached.

    `check` runs in one thread; `live` and `ready` may be called from others (HTTP handlers).
    `live()` is false once a dependency has been down past the grace, or when no check has
    finished for that long (a probe stuck on a black-holed connection, a hung main thread);
    `ready()` is true while the last check found every dependency reachable and the next one is
    not overdue. A probe stuck on a dependency that accepts connections but never answers (a
    frozen Redis, a partitioned ClickHouse) waits for its client's timeout, minutes for
    ClickHouse; readiness does not wait with it.
    """

    probes: Mapping[str, Callable[[], object]]
    grace_seconds: float
    clock: Callable[[], float] = time.monotonic
    _failing_since: dict[str, float] = field(default_factory=dict)
    _checked_at: float | None = None  # when the last check finished
    _started_at: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._started_at = self.clock()

    def check(self) -> str | None:
        """Run every probe; the first dependency failing for longer than the grace, or None."""
        now = self.clock()
        failing = None
        for name, probe in self.probes.items():
            try:
                probe()
            except Exception as exc:  # any failure counts: the probe's whole job is to fail
                with self._lock:
                    since = self._failing_since.setdefault(name, now)
                log.warning("%s unreachable for %.0f s: %s", name, now - since, type(exc).__name__)
                if now - since >= self.grace_seconds:
                    failing = name
                    break
            else:
                with self._lock:
                    recovered = self._failing_since.pop(name, None) is not None
                if recovered:
                    log.info("%s reachable again", name)
        with self._lock:
            self._checked_at = self.clock()
        return failing

    def live(self) -> bool:
        """No dependency down past the grace, and a check finished within the grace of being
        due (checks are due at start, then every `PROBE_INTERVAL_SECONDS`)."""
        now = self.clock()
        with self._lock:
            last = self._started_at if self._checked_at is None else self._checked_at
            down_since = min(self._failing_since.values(), default=now)
        return (
            now - last < self.grace_seconds + PROBE_INTERVAL_SECONDS
            and now - down_since < self.grace_seconds
        )

    def ready(self) -> bool:
        """The last check reached every dependency and finished less than
        `CHECK_OVERDUE_SECONDS` ago (false until the first one)."""
        now = self.clock()
        with self._lock:
            return (
                self._checked_at is not None
                and not self._failing_since
                and now - self._checked_at < CHECK_OVERDUE_SECONDS
            )


def supervise(
    stop: threading.Event, watchdog: Watchdog, interval: float = PROBE_INTERVAL_SECONDS
) -> str | None:
    """Probe now, then every `interval`, until `stop` is set (None) or a dependency stays down
    too long (its name). Runs in the process's main thread; on a name, the caller stops the
    worker and exits non-zero."""
    while True:
        failing = watchdog.check()
        if failing is not None:
            log.error(
                "%s unreachable for over %.0f s: exiting so that a fresh process takes over",
                failing,
                watchdog.grace_seconds,
            )
            return failing
        if stop.wait(interval):
            return None
