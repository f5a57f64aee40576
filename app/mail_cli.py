"""`ursa email …`: check the email settings from a terminal."""

from __future__ import annotations

import click


@click.group("email")
def email() -> None:
    """Email settings."""


@email.command("test")
@click.option("--to", "recipient", required=True, help="Address that receives the test email.")
def send_test(recipient: str) -> None:
    """Send a test email now, without the queue, to check SMTP_URL and DEFAULT_FROM_EMAIL."""
    from pydantic import ValidationError

    from app import mail
    from app.runtime import configure_logging
    from app.settings import Settings
    from app.smtp import MailError

    try:
        settings = Settings()
        configure_logging(settings.LOG_LEVEL)
        outbox = mail.send("test", recipient, {}, settings)
    except (ValidationError, MailError) as exc:
        raise click.ClickException(str(exc)) from None
    if outbox is None:
        click.echo(f"sent a test email to {recipient} through {settings.smtp_server}")
    else:
        click.echo(f"SMTP_URL is not set: the test email was written to {outbox}")
