"""`JobMetrics`: a Dramatiq middleware counting and timing jobs by actor.

Each processed message counts once in `ursa_jobs_total` with its outcome: `succeeded`,
`failed` (it raised; Dramatiq may retry it, and each attempt counts) or `skipped` (too old, or
skipped by another middleware). Attempts that ran are timed in `ursa_job_duration_seconds`.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from app.observability.metrics import JOB_SECONDS, JOBS


class JobMetrics(Middleware):
    """Counts and times every message a worker of this process handles."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}  # message id → perf_counter at start

    def before_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.MessageProxy
    ) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self._started.pop(message.message_id, None)
        if started is not None:
            JOB_SECONDS.labels(message.actor_name).observe(time.perf_counter() - started)
        outcome = "succeeded" if exception is None else "failed"
        JOBS.labels(message.actor_name, outcome).inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._started.pop(message.message_id, None)
        JOBS.labels(message.actor_name, "skipped").inc()
