"""Loopback HTTP receivers standing in for an OpenTelemetry collector and a Sentry host.

`HttpSink` keeps the (decompressed) body of every POST and answers 200 with an empty body,
which is a valid answer for both an OTLP/HTTP export and a Sentry envelope. `OtlpReceiver`
decodes the bodies POSTed to `/v1/traces` as `ExportTraceServiceRequest`s and those POSTed to
`/v1/metrics` as `ExportMetricsServiceRequest`s (opentelemetry-proto).
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"


class HttpSink:
    """An HTTP server on a free loopback port that records what is POSTed to it."""

    def __init__(self) -> None:
        self._posts: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def bodies(self, path: str) -> list[bytes]:
        """The bodies POSTed to `path`, oldest first."""
        with self._lock:
            return [body for posted, body in self._posts if posted == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with sink._lock:
                    sink._posts.append((self.path.split("?", 1)[0], body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    @contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span and its resource's attributes, values decoded to Python."""

    span: Span
    resource: dict[str, Any]

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return decode_attributes(self.span.attributes)


def decode_attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items if isinstance(item, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedMetric:
    """One exported metric (its points are `metric.sum`, `.gauge` or `.histogram`) and its
    resource's attributes."""

    metric: Metric
    resource: dict[str, Any]


class OtlpReceiver(HttpSink):
    """An OTLP/HTTP endpoint for traces (`url` + `/v1/traces`) and metrics (+ `/v1/metrics`)."""

    def metric_exports(self) -> list[list[ReceivedMetric]]:
        """The metrics of each export, oldest export first."""
        requests = [ExportMetricsServiceRequest.FromString(b) for b in self.bodies(METRICS_PATH)]
        return [
            [
                ReceivedMetric(metric, decode_attributes(metrics.resource.attributes))
                for metrics in request.resource_metrics
                for scope in metrics.scope_metrics
                for metric in scope.metrics
            ]
            for request in requests
        ]

    def spans(self) -> list[ReceivedSpan]:
        requests = [ExportTraceServiceRequest.FromString(body) for body in self.bodies(TRACES_PATH)]
        return [
            ReceivedSpan(span, decode_attributes(spans.resource.attributes))
            for request in requests
            for spans in request.resource_spans
            for scope in spans.scope_spans
            for span in scope.spans
        ]
