"""`SMTP_URL` parsing: schemes, default ports, percent-encoded credentials that never show."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.mail.smtp import SmtpServer
from app.settings import Settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://localhost", SmtpServer("localhost", 25, "none")),
        ("smtp://relay:2525", SmtpServer("relay", 2525, "none")),
        (
            "smtp+starttls://me%40example.com:p%3Ass@mail.example.com",
            SmtpServer("mail.example.com", 587, "starttls", "me@example.com", "p:ss"),
        ),
        ("smtps://u:p@mail.example.com", SmtpServer("mail.example.com", 465, "tls", "u", "p")),
        (
            "smtps://u:p@mail.example.com:2465",
            SmtpServer("mail.example.com", 2465, "tls", "u", "p"),
        ),
    ],
)
def test_urls_parse(url, expected):
    assert SmtpServer.from_url(url) == expected


@pytest.mark.parametrize(
    "url", ["https://u:hunter2@host", "smtp://u:hunter2@", "smtp://u:hunter2@host:port", "host"]
)
def test_bad_urls_fail_at_start_without_echoing_the_password(url):
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, SMTP_URL=url)

    assert "SMTP_URL" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_the_password_is_never_shown():
    settings = Settings(_env_file=None, SMTP_URL="smtps://u:hunter2@host")

    assert "hunter2" not in repr(settings)
    assert "hunter2" not in repr(settings.smtp_server)
    assert str(settings.smtp_server) == "host:465"


def test_the_sender_must_be_an_address():
    with pytest.raises(ValidationError, match="DEFAULT_FROM_EMAIL must be an address"):
        Settings(_env_file=None, DEFAULT_FROM_EMAIL="Ursa")
