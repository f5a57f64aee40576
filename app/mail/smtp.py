"""The SMTP transport: `SMTP_URL` parsed into an `SmtpServer`, and one message sent through it.

User name and password may be percent-encoded (`%40` for `@`). The password never appears in a
repr, a log line or an error message: errors name the server as `host:port` only.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from urllib.parse import unquote, urlsplit

TIMEOUT_SECONDS = 20.0

Security = Literal["none", "starttls", "tls"]
SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


class MailError(RuntimeError):
    """An email could not be handed to the SMTP server (refused, timed out, rejected).

    Worth a retry; the message names the server by `host:port`, never by its credentials.
    """


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Security
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse `SMTP_URL`; a `ValueError` says what is wrong without echoing the URL.

        `smtp+starttls://user:pass@host:587` upgrades a plain connection with STARTTLS (most
        providers), `smtps://user:pass@host:465` is TLS from the first byte, `smtp://host:25`
        has no TLS at all (a relay on the same machine or network). The port defaults to the
        scheme's usual one.
        """
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError(
                "SMTP_URL must look like smtp+starttls://user:pass@host:587, "
                "smtps://user:pass@host:465 or smtp://host:25"
            )
        security, default_port = SCHEMES[parts.scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError("SMTP_URL has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, message: EmailMessage) -> None:
        """Deliver `message` to its To/Cc/Bcc recipients, or raise `MailError`."""
        try:
            with self._connect() as client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"could not send email through SMTP server {self}: {exc}") from None

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
