"""Dramatiq's Redis broker, tuned so a killed worker's messages come back within seconds.

Dramatiq binds actors to a broker when they are declared; `redis_broker` re-binds the actors
it is given (`app.tasks.registry.ALL`) to the broker for this process's Redis.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from app.observability.jobs import JobMetrics
from app.observability.tracing import TraceContextMiddleware

HEARTBEAT_TIMEOUT_MS = 5_000
MAINTENANCE_CHANCE = 1_000_000  # per million dispatch calls: every call
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000

B = TypeVar("B", bound=dramatiq.Broker)


def _with_job_metrics(broker: B) -> B:
    broker.add_middleware(JobMetrics())
    return broker


# Actors are declared at import against a stub; `redis_broker` moves them to the real one.
# Both brokers count and time the jobs they run (`JobMetrics`).
dramatiq.set_broker(_with_job_metrics(StubBroker()))


def redis_broker(redis_url: str, actors: Iterable[dramatiq.Actor]) -> RedisBroker:  # type: ignore[type-arg]
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_url,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
        dead_message_ttl=DEAD_MESSAGE_TTL_MS,
    )
    _with_job_metrics(broker)
    broker.add_middleware(TraceContextMiddleware())  # a job continues its enqueuer's trace
    dramatiq.set_broker(broker)
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)
    return broker
