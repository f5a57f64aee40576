"""The health checks of `ursa worker` and `ursa scheduler`, on their metrics port.

`/healthz` (liveness) fails once a dependency has been down past the grace or once no check has
finished for that long; `/readyz` (readiness) follows the last check, and fails once the next
one is overdue. The watchdog's clock is
driven by hand; the server, its Redis collector and the process are real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from app.server.metrics_server import MetricsServer
from app.settings import Settings
from app.tasks.watchdog import CHECK_OVERDUE_SECONDS, PROBE_INTERVAL_SECONDS, Watchdog
from tests.conftest import free_port
from tests.integration.otlp_receiver import OtlpReceiver, ReceivedMetric

T = TypeVar("T")
GRACE = 30.0
URSA = str(Path(sys.executable).with_name("ursa"))
START_TIMEOUT = 60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Dependency:
    """A probe that fails while `up` is false."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> None:
        if not self.up:
            raise ConnectionError("unreachable")


class Served:
    """A metrics server answering from `watchdog`."""

    def __init__(self, settings: Settings, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        self.port = free_port()
        self.server = MetricsServer(
            settings.REDIS_URL, settings.BUFFER_STREAM, "127.0.0.1", self.port, watchdog
        )

    def status(self, path: str) -> int | None:
        return _status(self.port, path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis() -> Dependency:
    return Dependency()


@pytest.fixture
def served(settings: Settings, clock: Clock, redis: Dependency) -> Iterator[Served]:
    served = Served(settings, Watchdog({"redis": redis}, grace_seconds=GRACE, clock=clock))
    yield served
    served.server.close()


def test_metrics_are_still_served_and_other_paths_are_unknown(served):
    response = httpx.get(f"http://127.0.0.1:{served.port}/metrics", timeout=5)
    assert response.status_code == 200
    assert "ursa_redis_scrape_success 1.0" in response.text
    assert "# TYPE ursa_jobs_total counter" in response.text
    assert served.status("/") == served.status("/metrics/x") == 404


def test_ready_while_every_dependency_answers(served, clock, redis):
    assert (served.status("/healthz"), served.status("/readyz")) == (200, 503)  # no check yet
    assert served.watchdog.check() is None
    assert (served.status("/healthz"), served.status("/readyz")) == (200, 200)

    redis.up = False
    clock.now = 5.0
    assert served.watchdog.check() is None  # down, within the grace: alive, not ready
    assert (served.status("/healthz"), served.status("/readyz")) == (200, 503)

    redis.up = True
    clock.now = 10.0
    assert served.watchdog.check() is None
    assert (served.status("/healthz"), served.status("/readyz")) == (200, 200)


def test_not_alive_once_a_dependency_is_down_past_the_grace(served, clock, redis):
    redis.up = False
    assert served.watchdog.check() is None
    clock.now = GRACE
    assert served.watchdog.check() == "redis"
    assert (served.status("/healthz"), served.status("/readyz")) == (503, 503)


def test_not_alive_when_checks_stop_finishing(served, clock):
    assert served.watchdog.check() is None
    clock.now = GRACE + PROBE_INTERVAL_SECONDS - 1
    assert served.status("/healthz") == 200  # the next check is late, within the grace
    clock.now = GRACE + PROBE_INTERVAL_SECONDS
    assert served.status("/healthz") == 503  # a hung probe or main thread
    assert served.status("/readyz") == 503


def test_not_ready_once_a_check_is_overdue(served, clock):
    """A probe stuck on a dependency that accepts connections but never answers (a frozen
    Redis, a partitioned ClickHouse) waits for its own timeout, minutes at worst: readiness
    fails as soon as the next check is late."""
    assert served.watchdog.check() is None
    clock.now = CHECK_OVERDUE_SECONDS - 1
    assert served.status("/readyz") == 200  # the next check is under way
    clock.now = CHECK_OVERDUE_SECONDS
    assert (served.status("/healthz"), served.status("/readyz")) == (200, 503)


@pytest.mark.slow
def test_the_scheduler_process_serves_its_health_and_pushes_its_metrics(settings, tmp_path):
    """`ursa scheduler` as deployed: probes on its metrics port, OTLP metrics, clean SIGTERM."""
    port = free_port()
    with OtlpReceiver().running() as receiver:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("URSA_", "OTEL_"))},
            "URSA_DATA_DIR": str(tmp_path),
            "REDIS_URL": settings.REDIS_URL,
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(port),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_METRIC_EXPORT_INTERVAL": "100",  # milliseconds, read by the SDK
        }
        process = subprocess.Popen([URSA, "scheduler"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            _until(process, lambda: _status(port, "/readyz") == 200 or None)  # a first check
            assert _status(port, "/healthz") == 200
            exported = _until(process, lambda: _first(receiver, "ursa_redis_scrape_success"))
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
    assert code == 0, process.stderr.read()  # type: ignore[union-attr]
    assert exported.resource["service.name"] == "ursa-scheduler"
    assert exported.metric.gauge.data_points[0].as_double == 1


def _until(process: subprocess.Popen[str], found: Callable[[], T | None]) -> T:
    """What `found()` returns once it is not None, asked while `process` runs."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
        result = found()
        if result is not None:
            return result
        time.sleep(0.1)
    raise AssertionError("the scheduler never got there")


def _status(port: int, path: str) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
    except httpx.HTTPError:  # not listening yet
        return None


def _first(receiver: OtlpReceiver, name: str) -> ReceivedMetric | None:
    exported = (m for export in receiver.metric_exports() for m in export if m.metric.name == name)
    return next(exported, None)
