"""The Prometheus metrics pushed over OTLP/HTTP to a loopback receiver, after real requests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE as CUMULATIVE,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint

from app.observability.otlp import MetricsExport
from app.observability.tracing import INSTANCE_ID
from app.server.telemetry import export_metrics
from app.settings import Settings
from tests.integration.helpers import post_event
from tests.integration.otlp_receiver import OtlpReceiver, ReceivedMetric, decode_attributes

pytestmark = pytest.mark.db

SERVICE = "ursa-metrics-test"


@dataclass(frozen=True)
class Export:
    metrics: MetricsExport
    receiver: OtlpReceiver

    def flush(self) -> dict[str, ReceivedMetric]:
        """Export now; the metrics of this export by name."""
        exports = len(self.receiver.metric_exports())
        self.metrics.reader.force_flush()
        *_, latest = self.receiver.metric_exports()
        assert len(self.receiver.metric_exports()) == exports + 1
        return {received.metric.name: received for received in latest}


@pytest.fixture
def export(settings: Settings) -> Iterator[Export]:
    with OtlpReceiver().running() as receiver:
        configured = settings.model_copy(update={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        metrics = export_metrics(configured, SERVICE)
        yield Export(metrics, receiver)
        metrics.close()  # its last export while the receiver listens, rather than at exit


def _requests(metrics: dict[str, ReceivedMetric], **labels: str) -> HistogramDataPoint | None:
    """The HTTP histogram's point with these labels, if there is one yet."""
    received = metrics.get("ursa_http_request_duration_seconds")
    points = received.metric.histogram.data_points if received else []
    return next((p for p in points if decode_attributes(p.attributes) == labels), None)


async def test_requests_and_events_reach_the_collector(export, client, site_domain):
    healthz = {"method": "GET", "route": "/healthz", "status": "2xx"}
    before = export.flush()
    counted = _requests(before, **healthz)
    received = before["ursa_events_received"].metric.sum.data_points[0].as_double

    for _ in range(3):
        assert (await client.get("/healthz")).status_code == 200
    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    assert (await post_event(client, event)).status_code == 202
    after = export.flush()

    point = _requests(after, **healthz)
    assert point is not None
    assert point.count == (counted.count if counted else 0) + 3
    assert sum(point.bucket_counts) == point.count
    assert len(point.explicit_bounds) == len(point.bucket_counts) - 1
    requests = after["ursa_http_request_duration_seconds"]
    assert requests.metric.histogram.aggregation_temporality == CUMULATIVE
    assert requests.resource["service.name"] == SERVICE
    assert requests.resource["service.instance.id"] == INSTANCE_ID  # one series per process
    events = after["ursa_events_received"].metric.sum
    assert (events.is_monotonic, events.aggregation_temporality) == (True, CUMULATIVE)
    assert events.data_points[0].as_double == received + 1
    success = after["ursa_redis_scrape_success"].metric.gauge.data_points[0]
    assert success.as_double == 1  # the Redis gauges are exported too
