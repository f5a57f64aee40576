"""Let it crash: a worker that cannot reach what it works with exits, and the platform (systemd,
Kubernetes) starts a fresh one.

A worker whose Redis or ClickHouse is gone keeps its threads busy failing and retrying, and a
half-broken connection pool can outlive the outage. `supervise` runs cheap probes every few
seconds in the worker's main thread; once one dependency has failed for longer than the grace
period, it returns that dependency's name, and the caller stops the worker and exits non-zero.
Short outages (a Redis failover, a ClickHouse restart) pass within the grace period unnoticed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 5.0
UNHEALTHY_EXIT_CODE = 3


@dataclass
class Watchdog:
    """Probes by dependency name; a probe raises when its dependency cannot be reached."""

    probes: Mapping[str, Callable[[], object]]
    grace_seconds: float
    clock: Callable[[], float] = time.monotonic
    _failing_since: dict[str, float] = field(default_factory=dict)

    def check(self) -> str | None:
        """Run every probe; the first dependency failing for longer than the grace, or None."""
        now = self.clock()
        for name, probe in self.probes.items():
            try:
                probe()
            except Exception as exc:  # any failure counts: the probe's whole job is to fail
                since = self._failing_since.setdefault(name, now)
                log.warning("%s unreachable for %.0f s: %s", name, now - since, type(exc).__name__)
                if now - since >= self.grace_seconds:
                    return name
            else:
                if self._failing_since.pop(name, None) is not None:
                    log.info("%s reachable again", name)
        return None


def supervise(
    stop: threading.Event, watchdog: Watchdog, interval: float = PROBE_INTERVAL_SECONDS
) -> str | None:
    """Probe until `stop` is set (None) or a dependency stays down too long (its name)."""
    while not stop.wait(interval):
        failing = watchdog.check()
        if failing is not None:
            log.error(
                "%s unreachable for over %.0f s: exiting so that a fresh worker takes over",
                failing,
                watchdog.grace_seconds,
            )
            return failing
    return None
