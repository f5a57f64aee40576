"""The telemetry of an Ursa process: `app.observability.tracing`, handed this process's gauges."""

from __future__ import annotations

from app.observability import tracing
from app.observability.otlp import MetricsExport
from app.server.gauges import redis_gauges
from app.settings import Settings


def setup_telemetry(settings: Settings, service_name: str) -> tracing.Telemetry | None:
    """Sentry, tracing and the metrics export as configured, the Redis gauges exported too."""
    return tracing.setup_telemetry(settings, service_name, redis_gauges(settings))


def export_metrics(settings: Settings, service_name: str) -> MetricsExport:
    """The OTLP export of this process's metrics, the Redis gauges included."""
    return tracing.export_metrics(settings, service_name, redis_gauges(settings))
