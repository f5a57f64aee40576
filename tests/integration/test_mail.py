"""Email end to end: templates → message → a real SMTP server (aiosmtpd), the outbox, the actor."""

from __future__ import annotations

import logging
import re
import stat
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dramatiq
import html5lib
import pytest
from click.testing import CliRunner
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from app.cli.commands import main as ursa
from app.mail import compose as mail
from app.mail.smtp import MailError
from app.services import Services
from app.settings import Settings
from app.tasks import context
from app.tasks.actors import send_email
from tests.conftest import free_port
from tests.integration.smtp_sink import Certificate, SmtpSink, smtp_url

SUBJECT = "This is a test email from Ursa"


def mail_settings(data_dir: Path, smtp_url: str = "") -> Settings:
    return Settings(_env_file=None, URSA_DATA_DIR=data_dir, SMTP_URL=smtp_url)


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


def test_a_message_has_text_and_html_parts_from_the_sender_to_the_recipient(tmp_path, sink):
    settings = mail_settings(tmp_path, sink.url())

    assert mail.send("test", "alice@example.com", {"name": "Alice"}, settings) is None

    [received] = sink.received
    assert (received.mail_from, received.rcpt_tos) == ("noreply@localhost", ["alice@example.com"])
    assert sink.logins == ["ursa"]
    message = received.message
    assert (message["From"], message["To"], message["Subject"]) == (
        "Ursa <noreply@localhost>",
        "alice@example.com",
        SUBJECT,
    )
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert list(body) == ["text/plain", "text/html"]
    assert body["text/plain"].startswith("Hello Alice,\n\nThis is a test email from Ursa.")
    assert "<p>Hello Alice,</p>" in body["text/html"]
    assert f"<title>{SUBJECT}</title>" in body["text/html"]


def test_context_values_are_escaped_in_the_html_part_only(tmp_path):
    name = '<script>alert(1)</script><img src=x onerror="alert(2)">'

    body = parts(mail.compose("test", "a@example.com", {"name": name}, mail_settings(tmp_path)))

    document = html5lib.parse(body["text/html"], namespaceHTMLElements=False)
    assert [element.tag for element in document.iter() if element.tag in ("script", "img")] == []
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;&lt;img" in body["text/html"]
    assert f"Hello {name}," in body["text/plain"]  # plain text is not HTML: shown as typed


def test_without_smtp_url_the_email_is_written_to_the_outbox(tmp_path, caplog):
    link = "https://ursa.example/verify/" + "a" * 120  # longer than a 78-character line
    caplog.set_level(logging.INFO, logger="app.mail")

    path = mail.send("test", "bob@example.com", {"name": link}, mail_settings(tmp_path))

    assert path is not None
    assert path.parent == tmp_path.resolve() / "outbox"
    assert re.fullmatch(r"\d{8}T\d{12}Z-this-is-a-test-email-from-ursa\.eml", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    raw = path.read_bytes()
    assert link.encode() in raw  # not quoted-printable: the link can be clicked in a text view
    message = message_from_bytes(raw, policy=policy.default)
    assert (message["To"], message["Subject"]) == ("bob@example.com", SUBJECT)
    assert list(parts(message)) == ["text/plain", "text/html"]


def test_the_actor_delivers_through_a_worker(settings, sink):
    context.bind(Services(settings.model_copy(update={"SMTP_URL": SecretStr(sink.url())})))
    broker = send_email.broker
    assert isinstance(broker, StubBroker)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        send_email.send("test", "carol@example.com", {"name": "Carol"})
        broker.join(send_email.queue_name)
        worker.join()
    finally:
        worker.stop()

    assert [(r.rcpt_tos, r.message["Subject"]) for r in sink.received] == [
        (["carol@example.com"], SUBJECT)
    ]


def test_an_unreachable_server_is_a_clear_retry_without_credentials(settings, caplog):
    port = free_port()  # nothing listens there
    url = smtp_url(port, security="starttls")
    context.bind(Services(settings.model_copy(update={"SMTP_URL": SecretStr(url)})))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(dramatiq.Retry) as raised:
        send_email("test", "dave@example.com", {})

    expected = f"could not send email through SMTP server 127.0.0.1:{port}: "
    assert str(raised.value).startswith(expected)
    assert "Connection refused" in str(raised.value)
    assert raised.value.__cause__ is None
    assert expected in caplog.text
    assert "s3cret" not in caplog.text
    assert "s3cret" not in repr(context.current().settings)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.create(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_connections_verify_the_server_certificate(
    tmp_path, certificate, monkeypatch, security
):
    sink = SmtpSink(security, certificate)
    settings = mail_settings(tmp_path, sink.url())
    sink.start()
    try:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            mail.send("test", "gina@example.com", {}, settings)
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
        mail.send("test", "gina@example.com", {}, settings)
    finally:
        sink.stop()

    assert (sink.logins, [r.rcpt_tos for r in sink.received]) == (["ursa"], [["gina@example.com"]])


def test_a_rejected_login_is_a_mail_error(tmp_path, sink):
    settings = mail_settings(tmp_path, sink.url().replace("ursa:", "intruder:"))

    with pytest.raises(MailError, match=rf"SMTP server 127\.0\.0\.1:{sink.port}: \(535"):
        mail.send("test", "erin@example.com", {}, settings)
    assert sink.received == []


def test_email_test_command_sends_now_or_says_why_not(tmp_path, sink):
    runner = CliRunner()
    env = {"URSA_DATA_DIR": str(tmp_path), "SMTP_URL": sink.url(credentials=False)}

    sent = runner.invoke(ursa, ["email", "test", "--to", "frank@example.com"], env=env)
    env["SMTP_URL"] = smtp_url(free_port())  # nothing listens there
    failed = runner.invoke(ursa, ["email", "test", "--to", "frank@example.com"], env=env)
    env["SMTP_URL"] = env["SMTP_URL"].replace("smtp://", "smtpx://")
    misconfigured = runner.invoke(ursa, ["email", "test", "--to", "frank@example.com"], env=env)

    assert (sent.exit_code, sent.output) == (
        0,
        f"sent a test email to frank@example.com through 127.0.0.1:{sink.port}\n",
    )
    assert [r.rcpt_tos for r in sink.received] == [["frank@example.com"]]
    assert failed.exit_code == 1
    assert "Error: could not send email through SMTP server 127.0.0.1:" in failed.output
    assert "s3cret" not in failed.output
    assert misconfigured.exit_code == 1
    assert "SMTP_URL must look like smtp+starttls://user:pass@host:587" in misconfigured.output
    assert "s3cret" not in misconfigured.output
