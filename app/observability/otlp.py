"""The Prometheus metrics, also pushed over OTLP/HTTP (protobuf) to an OpenTelemetry collector.

Each metric is defined once, with prometheus_client (`app.observability.metrics`); with
`OTEL_EXPORTER_OTLP_ENDPOINT` set, a `MetricsExport` posts what a scrape of this process's
`/metrics` returns, converted by `metrics_data` (docs/operations.md, "Logs and metrics").
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import Metric as Family
from prometheus_client.registry import Collector

METRICS_PATH = "/v1/metrics"
SCOPE = InstrumentationScope("ursa")
CUMULATIVE = AggregationTemporality.CUMULATIVE


class MetricsExport:
    """Exports `registry` to `endpoint` periodically from a daemon thread, and once more on
    `close()`: at exit, unless called before (`ursa serve` closes it while its Redis runs).

    The SDK's `PeriodicExportingMetricReader` reads `OTEL_METRIC_EXPORT_INTERVAL` and
    `OTEL_METRIC_EXPORT_TIMEOUT`. The SDK reads metrics from its own instruments only (this
    version has no `MetricProducer`), so the reader is not attached to a `MeterProvider`: its
    collect callback is the conversion itself. Cumulative series start when the export starts,
    before the process handles anything."""

    def __init__(self, endpoint: str, registry: Collector, resource: Resource) -> None:
        exporter = OTLPMetricExporter(endpoint=endpoint.rstrip("/") + METRICS_PATH)
        self.reader = PeriodicExportingMetricReader(exporter)
        started = time.time_ns()

        def collect(_reader: MetricReader, *_: object, **__: object) -> MetricsData:
            return metrics_data(registry.collect(), resource, started, time.time_ns())

        # The hook a MeterProvider would set; the reader's thread waits an interval before use.
        self.reader._set_collect_callback(collect)
        atexit.register(self.close)

    def close(self) -> None:
        atexit.unregister(self.close)
        self.reader.shutdown()


def metrics_data(
    families: Iterable[Family], resource: Resource, start_ns: int, now_ns: int
) -> MetricsData:
    """`families` (as a Prometheus collector yields them) as OpenTelemetry metrics."""
    metrics = [
        metric for family in families if (metric := _metric(family, start_ns, now_ns)) is not None
    ]
    scope = ScopeMetrics(SCOPE, metrics, schema_url="")
    return MetricsData([ResourceMetrics(resource, [scope], schema_url="")])


def _metric(family: Family, start_ns: int, now_ns: int) -> Metric | None:
    """One family as a metric; None for other kinds, and for families with no series yet.

    A counter is named after its family (`ursa_events_received`: a Prometheus backend adds the
    `_total` back); a histogram keeps no min or max, which Prometheus does not keep. Summaries,
    info and state sets are left out: no metric of ours is one."""
    data: Sum | Gauge | Histogram
    if family.type == "counter":
        data = Sum(_numbers(family, "_total", start_ns, now_ns), CUMULATIVE, is_monotonic=True)
    elif family.type == "gauge":
        data = Gauge(_numbers(family, "", start_ns, now_ns))
    elif family.type == "histogram":
        data = Histogram(_histogram_points(family, start_ns, now_ns), CUMULATIVE)
    else:
        return None
    if not data.data_points:
        return None
    return Metric(family.name, family.documentation, family.unit, data)


def _numbers(family: Family, suffix: str, start_ns: int, now_ns: int) -> list[NumberDataPoint]:
    name = family.name + suffix
    return [  # floats, as Prometheus has them (a collector may yield ints)
        NumberDataPoint(dict(sample.labels), start_ns, now_ns, float(sample.value))
        for sample in family.samples
        if sample.name == name
    ]


@dataclass
class _Series:
    """The samples of one histogram series: cumulative buckets by upper bound, count, sum."""

    labels: dict[str, str]
    buckets: dict[float, float] = field(default_factory=dict)
    count: float = 0.0
    sum: float = 0.0

    def point(self, start_ns: int, now_ns: int) -> HistogramDataPoint:
        bounds = sorted(self.buckets)
        cumulative = [self.buckets[bound] for bound in bounds]
        counts = [int(b - a) for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
        return HistogramDataPoint(
            attributes=self.labels,
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=int(self.count),
            sum=self.sum,
            bucket_counts=counts,
            explicit_bounds=bounds[:-1],  # the last bound is +Inf, implicit in OTLP
            # Unknown: the encoder leaves None out of the protobuf (both fields are optional).
            min=None,  # type: ignore[arg-type]
            max=None,  # type: ignore[arg-type]
        )


def _histogram_points(family: Family, start_ns: int, now_ns: int) -> list[HistogramDataPoint]:
    series: dict[tuple[tuple[str, str], ...], _Series] = {}
    for sample in family.samples:
        labels = {key: value for key, value in sample.labels.items() if key != "le"}
        one = series.setdefault(tuple(sorted(labels.items())), _Series(labels))
        kind = sample.name.removeprefix(family.name)
        if kind == "_bucket":
            one.buckets[float(sample.labels["le"])] = sample.value
        elif kind == "_count":
            one.count = sample.value
        elif kind == "_sum":
            one.sum = sample.value
    return [one.point(start_ns, now_ns) for one in series.values()]
