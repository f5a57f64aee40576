"""A real SMTP server (aiosmtpd) on a free loopback port that keeps every message it receives.

It offers AUTH over the plain connection, so a client that logs in is checked too: `url()` holds
the sink's credentials; a client that does not log in is accepted as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port

SINK_USER = "ursa"
SINK_PASSWORD = "s3cret p@ss"  # percent-encoded in the URL


def smtp_url(port: int, *, credentials: bool = True, scheme: str = "smtp") -> str:
    """An `SMTP_URL` for a loopback port, with or without the sink's credentials."""
    userinfo = f"{SINK_USER}:{quote(SINK_PASSWORD)}@" if credentials else ""
    return f"{scheme}://{userinfo}127.0.0.1:{port}"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpSink:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.logins: list[str] = []
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    def url(self, *, credentials: bool = True) -> str:
        return smtp_url(self.port, credentials=credentials)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Line ends as a mail client stores them (SMTP carries CRLF).
        raw = envelope.content.replace(b"\r\n", b"\n")
        message = message_from_bytes(raw, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        valid = isinstance(auth_data, LoginPassword) and auth_data == (
            SINK_USER.encode(),
            SINK_PASSWORD.encode(),
        )
        if valid:
            self.logins.append(SINK_USER)
        return AuthResult(success=valid, handled=False)
