"""A real SMTP server (aiosmtpd) on a free loopback port that keeps every message it receives.

It offers AUTH (over plain connections too), so a client that logs in is checked: `url()` holds
the sink's credentials; a client that does not log in is accepted as well. With a certificate it
speaks STARTTLS (and then requires it) or implicit TLS.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.mail.smtp import SCHEMES, Security
from tests.conftest import free_port

SINK_USER = "ursa"
SINK_PASSWORD = "s3cret p@ss"  # percent-encoded in the URL


def smtp_url(port: int, *, credentials: bool = True, security: Security = "none") -> str:
    """An `SMTP_URL` for a loopback port, with or without the sink's credentials."""
    [scheme] = [name for name, (kind, _) in SCHEMES.items() if kind == security]
    userinfo = f"{SINK_USER}:{quote(SINK_PASSWORD)}@" if credentials else ""
    return f"{scheme}://{userinfo}127.0.0.1:{port}"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1; trust it with `SSL_CERT_FILE=<cert>`."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path) -> Certificate:
        certificate = cls(folder / "cert.pem", folder / "key.pem")
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "1",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(certificate.key), "-out", str(certificate.cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpSink:
    def __init__(self, security: Security = "none", certificate: Certificate | None = None) -> None:
        self.received: list[Received] = []
        self.logins: list[str] = []
        self.port = free_port()
        self.security = security
        tls: dict[str, Any] = {}
        if security == "starttls" and certificate:
            tls = {"tls_context": certificate.server_context(), "require_starttls": True}
        elif security == "tls" and certificate:
            tls = {"ssl_context": certificate.server_context()}
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            **tls,
        )

    def url(self, *, credentials: bool = True) -> str:
        return smtp_url(self.port, credentials=credentials, security=self.security)

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


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A plain sink (no TLS) for the test."""
    server = SmtpSink()
    server.start()
    yield server
    server.stop()
