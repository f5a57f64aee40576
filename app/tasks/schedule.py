"""Every periodic job, in one place, and the scheduler that enqueues them.

The buffer flush runs as a 1 s tick rather than a self-rescheduling actor: a chain of messages
that re-enqueue themselves dies silently when one message is lost or dead-lettered, while a
tick restarts it within a second. The flusher's Redis lock makes overlapping ticks harmless,
and `max_age` drops ticks that waited while no worker was running.
"""

from __future__ import annotations

from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.tasks import actors, billing_jobs, deletion_jobs

PURGE_INTERVAL_SECONDS = 10 * 60


@dataclass(frozen=True)
class Job:
    actor: object
    seconds: float


def jobs(flush_interval_seconds: float) -> list[Job]:
    return [
        Job(actors.flush_buffer, flush_interval_seconds),
        Job(deletion_jobs.purge_deleted_accounts, PURGE_INTERVAL_SECONDS),
        Job(deletion_jobs.erase_orphaned_site_data, PURGE_INTERVAL_SECONDS),
        Job(billing_jobs.meter_usage, billing_jobs.METER_INTERVAL_SECONDS),
    ]


def make_scheduler(flush_interval_seconds: float) -> BackgroundScheduler:
    """A scheduler running in a thread of its own (the caller's thread supervises)."""
    scheduler = BackgroundScheduler()
    for job in jobs(flush_interval_seconds):
        scheduler.add_job(
            job.actor.send,  # type: ignore[attr-defined]
            IntervalTrigger(seconds=job.seconds),
            max_instances=1,
            coalesce=True,
        )
    return scheduler
