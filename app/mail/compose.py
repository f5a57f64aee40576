"""Email: compose a message from templates, deliver it through SMTP or into the outbox.

Requests never call these: they enqueue `app.tasks.actors.send_email`, whose worker does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
# RFC 5322 allows lines of 998 characters. Python's default of 78 would encode every long link
# as quoted-printable, which cannot be clicked in an .eml opened as text; non-ASCII text still is.
MESSAGE_POLICY = policy.default.clone(max_line_length=998, cte_type="7bit")
SLUG_LENGTH = 40

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def compose(
    template: str, to: str, context: Mapping[str, object], settings: Settings
) -> EmailMessage:
    """The message for `template` addressed to `to`; a missing value raises `UndefinedError`.

    `emails/<template>.txt` is the plain-text part (its `subject` block is the Subject) and
    `emails/<template>.html` the HTML part (autoescaped, extending `emails/base.html`), in one
    multipart/alternative message from `DEFAULT_FROM_EMAIL`. Templates also see `base_url` and,
    the HTML one, `subject`.
    """
    values = {"base_url": settings.BASE_URL, **context}
    text_template = _templates.get_template(f"emails/{template}.txt")
    subject = _render_subject(text_template, values)
    html = _templates.get_template(f"emails/{template}.html").render(values, subject=subject)

    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = subject
    message["From"] = settings.DEFAULT_FROM_EMAIL
    message["To"] = to
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    sender_domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    message["Message-ID"] = make_msgid(domain=sender_domain)
    message.set_content(text_template.render(values))
    message.add_alternative(html, subtype="html")
    return message


def _render_subject(template: jinja2.Template, values: Mapping[str, object]) -> str:
    block = template.blocks.get("subject")
    if block is None:
        raise jinja2.TemplateError(f"{template.name} has no subject block")
    return " ".join("".join(block(template.new_context(dict(values)))).split())


def deliver(message: EmailMessage, settings: Settings) -> Path | None:
    """Send `message` through `SMTP_URL` (None), or write it to the outbox (its path):
    `<URSA_DATA_DIR>/outbox/<timestamp>-<slug>.eml`, whose path is logged.

    Raises `app.mail.smtp.MailError` when the SMTP server cannot take it.
    """
    server = settings.smtp_server
    if server is None:
        return _write_outbox(message, settings.data_dir / "outbox")
    server.send(message)
    return None


def send(template: str, to: str, context: Mapping[str, object], settings: Settings) -> Path | None:
    """Compose and deliver in one step (for the worker and `ursa email test`)."""
    return deliver(compose(template, to, context, settings), settings)


def _write_outbox(message: EmailMessage, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    slug = re.sub(r"[^a-z0-9]+", "-", str(message["Subject"]).lower()).strip("-")
    path = folder / f"{stamp}-{slug[:SLUG_LENGTH] or 'email'}.eml"
    # Owner-only and never overwritten: the file may hold a sign-in or reset link.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(message.as_bytes())
    log.info("SMTP_URL is not set: email %r written to %s", str(message["Subject"]), path)
    return path
