"""Prometheus samples converted into OpenTelemetry metrics for the OTLP export."""

from __future__ import annotations

from opentelemetry.sdk.metrics import export as otel
from opentelemetry.sdk.metrics.export import AggregationTemporality, Metric
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from app.observability.otlp import metrics_data

START, NOW = 1_000, 2_000
RESOURCE = Resource.create({"service.name": "ursa-test"})


def _converted(registry: CollectorRegistry) -> dict[str, Metric]:
    data = metrics_data(registry.collect(), RESOURCE, START, NOW)
    (resource_metrics,) = data.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "ursa-test"
    (scope,) = resource_metrics.scope_metrics
    return {metric.name: metric for metric in scope.metrics}


def test_a_counter_becomes_a_monotonic_cumulative_sum_per_label_set():
    registry = CollectorRegistry()
    jobs = Counter("t_jobs", "Jobs by outcome.", ["outcome"], registry=registry)
    jobs.labels("succeeded").inc(3)
    jobs.labels("failed").inc()

    metric = _converted(registry)["t_jobs"]  # the family's name: no `_total`
    assert metric.description == "Jobs by outcome."
    assert isinstance(metric.data, otel.Sum)
    assert metric.data.is_monotonic
    assert metric.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    points = {p.attributes["outcome"]: p for p in metric.data.data_points}  # type: ignore[index]
    assert {key: p.value for key, p in points.items()} == {"succeeded": 3.0, "failed": 1.0}
    assert {(p.start_time_unix_nano, p.time_unix_nano) for p in points.values()} == {(START, NOW)}


def test_a_gauge_becomes_a_gauge():
    registry = CollectorRegistry()
    Gauge("t_length", "Entries.", registry=registry).set(42)

    metric = _converted(registry)["t_length"]
    assert isinstance(metric.data, otel.Gauge)
    assert [(dict(p.attributes or {}), p.value) for p in metric.data.data_points] == [({}, 42.0)]


def test_a_histogram_keeps_its_bounds_and_counts_each_bucket_once():
    registry = CollectorRegistry()
    seconds = Histogram("t_seconds", "Durations.", ["route"], buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 0.7, 3.0):
        seconds.labels("/a").observe(value)
    seconds.labels("/b").observe(0.01)

    metric = _converted(registry)["t_seconds"]
    assert isinstance(metric.data, otel.Histogram)
    assert metric.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    points = {p.attributes["route"]: p for p in metric.data.data_points}  # type: ignore[index]
    a, b = points["/a"], points["/b"]
    assert list(a.explicit_bounds) == [0.1, 1.0]  # +Inf is implicit
    assert list(a.bucket_counts) == [1, 2, 1]  # per bucket, not cumulative as in Prometheus
    assert (a.count, a.sum) == (4, 4.25)
    assert dict(a.attributes or {}) == {"route": "/a"}  # no `le`
    assert (list(b.bucket_counts), b.count) == ([1, 0, 0], 1)


def test_families_with_no_series_and_other_kinds_are_left_out():
    registry = CollectorRegistry()
    Counter("t_unused", "Labelled, never incremented.", ["reason"], registry=registry)
    Summary("t_summary", "Not a kind we use.", registry=registry).observe(1)
    Gauge("t_kept", "Kept.", registry=registry).set(1)

    assert set(_converted(registry)) == {"t_kept"}
