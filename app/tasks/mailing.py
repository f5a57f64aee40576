"""What every email job shares: one retry policy, and delivery that turns an SMTP failure into
a Dramatiq retry whose log line names the template, never the address or a link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import ParamSpec

import dramatiq
import jinja2

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.mail import compose as mail
from app.mail.smtp import MailError
from app.tasks.context import current

log = logging.getLogger(__name__)
P = ParamSpec("P")


def email_actor(fn: Callable[P, None]) -> dramatiq.Actor[P, None]:
    """Declare an email actor on the `email` queue.

    Five retries after 30 s, 1, 2, 4 and 8 min (each up to twice that with jitter) ride out a
    restarting or briefly unreachable SMTP server; a broken template is not retried at all.
    A new decorator per actor: one decorator object of Dramatiq's names only one actor.
    """
    declare = dramatiq.actor(
        queue_name="email",
        max_retries=5,
        min_backoff=30_000,
        max_backoff=15 * 60_000,
        time_limit=120_000,
        throws=(jinja2.TemplateError,),
    )
    return declare(fn)


def deliver(template: str, to: str, context: Mapping[str, object]) -> None:
    """Render and send `emails/<template>.*`; raise `dramatiq.Retry` when SMTP fails."""
    try:
        mail.send(template, to, context, current().settings)
    except MailError as exc:
        log.warning("email %r not delivered, Dramatiq retries it: %s", template, exc)
        raise dramatiq.Retry(str(exc)) from None
