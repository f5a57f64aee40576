"""Structured logs: one JSON object per line on the chosen stream, for structlog and stdlib
loggers alike, at the configured level, with tokens in URLs and email addresses redacted."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from app.observability.logging import configure_logging, formatter
from app.observability.requests import request_id, status_class

SECRET = "s3cr3t-T0ken_value"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_stdlib_and_structlog_records_are_json_lines_on_stdout(capsys):
    configure_logging("INFO", "stdout", force=True)
    logging.getLogger("app.example").info("started %d workers", 2)
    structlog.stdlib.get_logger("app.other").info("flushed", events=5)

    captured = capsys.readouterr()
    assert captured.err == ""
    first, second = lines_of(captured.out)
    assert {k: first[k] for k in ("event", "level", "logger")} == {
        "event": "started 2 workers",
        "level": "info",
        "logger": "app.example",
    }
    assert {k: second[k] for k in ("event", "level", "logger", "events")} == {
        "event": "flushed",
        "level": "info",
        "logger": "app.other",
        "events": 5,
    }
    assert first["timestamp"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_commands_log_to_stderr_at_their_level(capsys):
    configure_logging("WARNING", "stderr", force=True)
    log = logging.getLogger("app.example")
    log.info("not shown")
    structlog.stdlib.get_logger("app.example").info("not shown either")
    log.warning("shown")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line["event"] for line in lines_of(captured.err)] == ["shown"]


@pytest.mark.usefixtures("restore_logging")
def test_debug_level_is_honoured(capsys):
    configure_logging("DEBUG", "stdout", force=True)
    logging.getLogger("app.example").debug("details")
    assert [line["level"] for line in lines_of(capsys.readouterr().out)] == ["debug"]


@pytest.mark.usefixtures("restore_logging")
def test_tokens_and_emails_are_redacted_everywhere_in_the_line(capsys):
    configure_logging("INFO", "stdout", force=True)
    try:
        raise ValueError(f"bad link /password/reset/{SECRET}")
    except ValueError:
        logging.getLogger("app.example").exception("mail to ada@example.com failed")
    structlog.stdlib.get_logger("app.example").info("shared", link=f"/share/{SECRET}")

    output = capsys.readouterr().out
    assert SECRET not in output
    assert "ada@example.com" not in output
    failure, shared = lines_of(output)
    assert failure["event"] == "mail to [email] failed"
    assert "/password/reset/[redacted]" in failure["exception"]
    assert shared["link"] == "/share/[redacted]"


def test_a_sane_request_id_is_kept_and_others_are_replaced():
    assert request_id([(b"x-request-id", b"abc-123.X:y_z")]) == b"abc-123.X:y_z"
    for bad in (b"", b"a b", b"<script>", b"x" * 129, b"ada@example.com"):
        generated = request_id([(b"x-request-id", bad)])
        assert generated != bad
        assert len(generated) == 32
    assert request_id([]) != request_id([])


@pytest.mark.parametrize(
    ("status", "expected"), [(200, "2xx"), (303, "3xx"), (404, "4xx"), (503, "5xx"), (None, "none")]
)
def test_status_classes(status, expected):
    assert status_class(status) == expected


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_lines_are_readable_and_redacted_too():
    stream = Terminal()
    try:
        raise ValueError(f"bad link /invitations/{SECRET}")
    except ValueError:
        record = logging.LogRecord(
            "app.example", logging.ERROR, __file__, 1, "to %s", ("ada@example.com",), sys.exc_info()
        )
    line = formatter(stream).format(record)
    assert SECRET not in line
    assert "ada@example.com" not in line
    assert "/invitations/[redacted]" in line
    assert not line.lstrip().startswith("{")


def test_on_a_terminal_tracebacks_show_frames_but_no_local_variables():
    """A local can hold a request body, a form field or a secret."""

    def handle(body: bytes) -> None:
        raise RuntimeError(f"step failed on {len(body)} bytes")

    body = secrets.token_hex(8).encode()  # not in the source lines a traceback quotes
    try:
        handle(body)
    except RuntimeError:
        record = logging.LogRecord(
            "app.ingest", logging.ERROR, __file__, 1, "ingest failed", (), sys.exc_info()
        )
    line = re.sub(r"\x1b\[[0-9;]*m", "", formatter(Terminal()).format(record))  # no colours
    assert "RuntimeError" in line
    assert "step failed on 16 bytes" in line
    assert "in handle" in line
    assert body.decode() not in line


@pytest.mark.usefixtures("restore_logging")
def test_someone_elses_logging_setup_is_left_alone(capsys):
    root = logging.getLogger()
    assert root.handlers  # pytest's capture
    before = list(root.handlers)
    configure_logging("DEBUG", "stdout")
    assert root.handlers == before
    logging.getLogger("app.example").warning("via the capture only")
    assert capsys.readouterr().out == ""


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("sampled", "expected"), [(True, f"{0xABC:032x}"), (False, None)])
def test_lines_logged_in_a_sampled_trace_carry_its_id(capsys, sampled, expected):
    configure_logging("INFO", "stdout", force=True)
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=flags))
    with trace.use_span(span):
        logging.getLogger("app.example").info("inside")
    logging.getLogger("app.example").info("outside")
    inside, outside = lines_of(capsys.readouterr().out)
    assert inside.get("trace_id") == expected
    assert "trace_id" not in outside
