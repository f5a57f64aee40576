"""Running queued Dramatiq jobs in tests, and reading the emails they wrote to the outbox."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import dramatiq
from dramatiq.brokers.stub import StubBroker

from app.services import Services
from app.tasks import context
from app.tasks.actors import send_email


def run_jobs(services: Services) -> None:
    """Process every queued message (and the ones they enqueue) on the stub broker."""
    context.bind(services)
    broker = send_email.broker
    assert isinstance(broker, StubBroker)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        for _ in range(3):  # jobs may enqueue jobs
            for queue in list(broker.get_declared_queues()):
                broker.join(queue, fail_fast=True)
            worker.join()
    finally:
        worker.stop()


def emails_to(services: Services, address: str) -> list[EmailMessage]:
    """Emails written to the outbox for `address`, oldest first."""
    folder = services.settings.data_dir / "outbox"
    found = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, path: str) -> str:
    """The first link in the email's text whose path starts with `path`, without the host."""
    match = re.search(rf"https?://[^/\s]+({re.escape(path)}[^\s]*)", text_of(message))
    assert match, f"no {path} link in {message['Subject']!r}"
    return match[1]
