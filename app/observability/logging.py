"""Structured logs: one JSON object per line (a readable line when the stream is a terminal).

structlog loggers and the standard library's (ours, uvicorn's, Dramatiq's…) end in the same
handler, whose `formatter` renders both alike; before rendering, every string of the record
passes through `app.observability.redaction.redact` and has its email addresses masked, so
neither a token in a URL nor an address reaches the output, wherever it was (message, field,
traceback). Service processes log to stdout, one-shot CLI commands to stderr (docs/operations.md).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from app.observability.redaction import redact

REDACTED_EMAIL = "[email]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Fields whose values come from the app, never from a request: a route template such as
# `/share/{slug}` names the token's place without holding one.
TRUSTED_FIELDS = frozenset({"route"})
NOISY_LOGGERS = ("apscheduler", "httpx", "dramatiq", "alembic")


def add_trace_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The id of the sampled trace the line was logged in, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        event["trace_id"] = format(context.trace_id, "032x")
    return event


# Fields added to every line, from structlog and standard-library loggers alike.
SHARED_PROCESSORS: tuple[Processor, ...] = (
    structlog.contextvars.merge_contextvars,  # request_id while a request is handled
    add_trace_id,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
)


# What a structlog logger does before handing its record to the standard library's handler.
STRUCTLOG_PROCESSORS: tuple[Processor, ...] = (
    structlog.stdlib.filter_by_level,
    *SHARED_PROCESSORS,
    structlog.processors.StackInfoRenderer(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
)

Stream = Literal["stdout", "stderr"]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that always goes through the standard library's `name` logger, even
    in a program that never calls `configure_logging` (structlog's own default would print
    straight to stdout, past the handler, its level and the redaction)."""
    return structlog.stdlib.BoundLogger(
        logging.getLogger(name), processors=STRUCTLOG_PROCESSORS, context={}
    )


class _Handler(logging.StreamHandler[TextIO]):
    """The root handler this module installs, writing to whatever `sys.stdout` (or stderr) is
    when a record is emitted, like the standard library's last-resort handler: a replaced
    stream (a test's capture, a CLI runner's) is followed rather than kept after it closes."""

    def __init__(self, name: Stream) -> None:
        super().__init__()
        self.stream_name = name

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self.stream_name)  # type: ignore[no-any-return]

    @stream.setter
    def stream(self, _: TextIO) -> None:
        """Ignored: the stream is looked up at each record."""


def scrub(text: str) -> str:
    """`text` with tokens in URLs and email addresses redacted."""
    return _EMAIL.sub(REDACTED_EMAIL, redact(text))


def scrub_values(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Redact every string of the record (message, fields, rendered traceback), before it is
    rendered: redacting a rendered JSON line could cut an escape sequence in half."""
    return {
        key: value if key in TRUSTED_FIELDS else _scrubbed(value)
        for key, value in event_dict.items()
    }


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    return value  # exc_info tuples included: the console renderer formats (and scrubs) them


def scrub_line(_: WrappedLogger, __: str, line: Any) -> Any:
    """After the console renderer, which formats tracebacks itself."""
    return scrub(line) if isinstance(line, str) else line


def _renderer(stream: TextIO) -> list[Processor]:
    if stream.isatty():
        # Tracebacks without the frames' local variables (rich's default shows them): they hold
        # request bodies, form fields and secrets, as the JSON lines' tracebacks never do.
        tracebacks = structlog.dev.RichTracebackFormatter(show_locals=False)
        console = structlog.dev.ConsoleRenderer(colors=True, exception_formatter=tracebacks)
        return [scrub_values, console, scrub_line]
    return [structlog.processors.format_exc_info, scrub_values, structlog.processors.JSONRenderer()]


def formatter(stream: TextIO) -> structlog.stdlib.ProcessorFormatter:
    """JSON lines (or console lines on a terminal), redacted, for any log record."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(stream),
        ],
    )


def configure_logging(level: str, stream: Stream, *, force: bool = False) -> None:
    """Send every log record at `level` or above to `stream`, formatted by `formatter`.

    Replaces the handler a previous call installed (a process may switch streams once it
    knows it is a service). Like `logging.basicConfig`, it leaves the standard library's logging
    alone when someone else's handler is on the root logger already (a test runner's capture,
    an embedding program), unless `force`.
    """
    structlog.configure(
        processors=list(STRUCTLOG_PROCESSORS),
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not force and any(not isinstance(h, _Handler) for h in root.handlers):
        return
    handler = _Handler(stream)
    handler.setFormatter(formatter(handler.stream))
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
