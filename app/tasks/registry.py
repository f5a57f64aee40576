"""Every actor module, for the broker: `setup_broker` declares them all, by name."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from app.tasks import account_jobs, actors, billing_jobs, deletion_jobs, org_jobs
from app.tasks.broker import redis_broker

ALL: tuple[dramatiq.Actor, ...] = (  # type: ignore[type-arg]
    *actors.ACTORS,
    *account_jobs.ACTORS,
    *org_jobs.ACTORS,
    *deletion_jobs.ACTORS,
    *billing_jobs.ACTORS,
)


def setup_broker(redis_url: str) -> RedisBroker:
    """The Redis broker of this process, with every actor declared on it."""
    return redis_broker(redis_url, ALL)


def job_queues() -> list[str]:
    """The Dramatiq queues of every actor (whose dead letters are watched)."""
    return sorted({actor.queue_name for actor in ALL})
