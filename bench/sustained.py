"""(e) Sustained load on embedded `ursa serve` and (f) the memory of its process tree.

`ursa serve` runs as a child (temp data dir, free ports: web, worker threads, scheduler, chDB and
its own redis-server). The load generator sends `/api/event` requests on a fixed schedule. Short
probes look for the highest rate at which the stream lag (age of the oldest entry still in the
Redis stream) stays bounded; the long run then holds that rate. Meanwhile this process sends a
few probe events with known ids and polls ClickHouse (through the instance's internal port, like
`ursa stats`) until each is queryable: freshness = time from the 202 to the row being found.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from app.analytics.buffer.stream import GROUP
from app.analytics.clickhouse.remote import RemoteClickHouse
from app.analytics.ingest.ids import make_id
from bench.common import (
    LOOPBACK,
    Figure,
    emit,
    free_port,
    percentile,
    python_env,
    say,
    stop,
    tree_memory,
    ursa_command,
    wait_http,
)
from bench.ingest import run_loader
from bench.traffic import DOMAIN

CONNECTIONS = 64  # enough in flight to ride out flush pauses at a fixed rate
STREAM = "ursa:events"
FIRST_RATE = 3000.0
MAX_LAG_SECONDS = 5.0
PROBES = 5
COUNT_CAP = 50_000  # stream entries counted per lag sample
MIN_ACCEPTED = 0.9  # of the offered rate; below, the server (not the flush) is the limit
GIB = 2**30


@dataclass
class Instance:
    folder: Path
    port: int
    internal_port: int
    process: subprocess.Popen[bytes]
    site_id: int

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.folder / "redis" / "redis.sock"))

    def gateway(self) -> RemoteClickHouse:
        token = (self.folder / "secrets" / "internal_token").read_text().strip()
        return RemoteClickHouse(f"http://{LOOPBACK}:{self.internal_port}", token)


@dataclass
class Sampler:
    """Samples, every `interval`, the memory of the process tree and the stream's lag."""

    instance: Instance
    interval: float = 0.5
    samples: list[tuple[float, int, int, float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    errors: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        client = self.instance.redis
        try:
            while not self._stop.is_set():
                try:
                    rss, hwm = tree_memory(self.instance.process.pid)
                    lag, waiting = stream_lag(client)
                except Exception as exc:  # keep sampling; say what went wrong once
                    if not self.errors:
                        say(f"  (sampler: {exc!r})")
                    self.errors += 1
                else:
                    self.samples.append((time.monotonic(), rss, hwm, lag, waiting))
                self._stop.wait(self.interval)
        finally:
            client.close()

    def between(self, start: float, end: float) -> list[tuple[float, int, int, float, int]]:
        return [sample for sample in self.samples if start <= sample[0] <= end]


def stream_lag(client: redis.Redis) -> tuple[float, int]:
    """(age in seconds of the oldest event not yet in ClickHouse, how many are waiting).

    Waiting = delivered to the flusher but not acknowledged, plus not yet delivered (counted up
    to `COUNT_CAP`). The stream itself also holds acknowledged entries until the flusher trims
    it after a drain, so its length says little.
    """
    try:
        groups: Any = client.xinfo_groups(STREAM)
        group = next((g for g in groups if g["name"] == GROUP.encode()), None)
        if group is None:  # no flush yet: everything is waiting
            first: Any = client.xrange(STREAM, count=1)
            return _age(first), int(client.xlen(STREAM))
        undelivered: Any = client.xrange(
            STREAM, min=b"(" + group["last-delivered-id"], count=COUNT_CAP
        )
        pending = int(group["pending"])
        oldest = client.xpending(STREAM, GROUP)["min"] if pending else None  # None: acked meanwhile
        first = [(oldest, None)] if oldest else undelivered[:1]
    except redis.RedisError:
        return float("nan"), 0
    return _age(first), pending + len(undelivered)


def _age(entries: Any) -> float:
    if not entries:
        return 0.0
    millis = int(entries[0][0].split(b"-")[0])
    return max(0.0, time.time() - millis / 1000)


class Prober:
    """Sends probe events with known ids and finds when each becomes queryable."""

    def __init__(self, instance: Instance, per_second: float = 4.0) -> None:
        self.instance = instance
        self.per_second = per_second
        self.accepted: dict[int, float] = {}
        self.found: dict[int, float] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, grace: float = 15.0) -> None:
        """Stop sending; keep polling up to `grace` seconds for the last probes."""
        self._stop.set()
        self._threads[0].join()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and len(self.found) < len(self.accepted):
            time.sleep(0.2)
        self._threads[1].join(timeout=5)

    def _send(self) -> None:
        url = f"http://{LOOPBACK}:{self.instance.port}/api/event"
        headers = {
            "Content-Type": "text/plain",
            "X-Forwarded-For": "81.2.69.160",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        }
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                event_id = make_id()
                body = {
                    "n": "pageview",
                    "u": f"https://{DOMAIN}/probe",
                    "d": DOMAIN,
                    "ursa": {"id": f"{event_id:016x}"},
                }
                try:
                    response = client.post(url, content=json.dumps(body), headers=headers)
                except httpx.HTTPError:
                    continue
                if response.status_code == 202:
                    self.accepted[event_id] = time.monotonic()
                self._stop.wait(1 / self.per_second)

    def _poll(self) -> None:
        gateway = self.instance.gateway()
        since = int(time.time()) - 300
        try:
            while not (self._stop.is_set() and len(self.found) >= len(self.accepted)):
                waiting = [i for i in list(self.accepted) if i not in self.found]
                if waiting:
                    rows = gateway.query(
                        "bench_probe",
                        "SELECT event_id FROM events WHERE site_id = {site:UInt32} "
                        "AND timestamp >= {since:DateTime('UTC')} "
                        "AND event_id IN {ids:Array(UInt64)}",
                        {"site": self.instance.site_id, "since": since, "ids": waiting},
                    )
                    now = time.monotonic()
                    for row in rows:
                        self.found.setdefault(int(row["event_id"]), now)
                time.sleep(0.2)
        finally:
            gateway.close()

    def freshness(self) -> list[float]:
        return [self.found[i] - t for i, t in self.accepted.items() if i in self.found]


def _stored(gateway: RemoteClickHouse, site_id: int) -> int:
    row = gateway.query(
        "bench_stored",
        "SELECT (SELECT count() FROM events WHERE site_id = {site:UInt32}) + "
        "(SELECT count() FROM performance WHERE site_id = {site:UInt32}) AS n",
        {"site": site_id},
    )[0]
    return int(row["n"])


class StoredCounter:
    """Counts the site's stored rows (events + performance) once a second."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        gateway = self.instance.gateway()
        try:
            while not self._stop.is_set():
                self.samples.append((time.monotonic(), _stored(gateway, self.instance.site_id)))
                self._stop.wait(1.0)
        finally:
            gateway.close()

    def rate(self, start: float, end: float) -> float:
        """Rows stored per second between the samples nearest to `start` and `end`."""
        window = [sample for sample in self.samples if start <= sample[0] <= end]
        if len(window) < 2:
            return float("nan")
        (t0, n0), (t1, n1) = window[0], window[-1]
        return (n1 - n0) / (t1 - t0)


def _wait_drained(instance: Instance, timeout: float) -> float:
    """Seconds until the stream is (practically) empty."""
    client = instance.redis
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            _, waiting = stream_lag(client)
            if waiting == 0:
                break
            time.sleep(0.25)
    finally:
        client.close()
    return time.monotonic() - started


def start_instance(workdir: Path) -> Instance:
    folder = workdir / "serve-data"
    port, internal_port = free_port(), free_port()
    env = python_env(
        URSA_DATA_DIR=str(folder),
        PORT=str(port),
        METRICS_PORT=str(internal_port),
        TRUSTED_PROXIES=LOOPBACK,
        # Far above the offered load: the caps are checked (their cost is measured), never hit.
        INGEST_SITE_EVENTS_PER_MINUTE=str(10**9),
        LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [*ursa_command(), "sites", "add", DOMAIN], env=env, check=True, stdout=subprocess.DEVNULL
    )
    listed = subprocess.run(
        [*ursa_command(), "sites", "list"], env=env, check=True, capture_output=True, text=True
    ).stdout
    site_id = next(int(line.split("\t")[0]) for line in listed.splitlines() if DOMAIN in line)
    with (workdir / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [*ursa_command(), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    wait_http(f"http://{LOOPBACK}:{port}/healthz", timeout=120, process=process)
    wait_http(f"http://{LOOPBACK}:{internal_port}/healthz", timeout=30, process=process)
    return Instance(folder, port, internal_port, process, site_id)


@dataclass
class Attempt:
    rate: float
    achieved: float
    max_lag: float
    final_lag: float
    bounded: bool


def _attempt(
    instance: Instance, sampler: Sampler, rate: float, seconds: float, workdir: Path
) -> tuple[Attempt, dict[str, Any], float, float]:
    started = time.monotonic()
    result = run_loader(
        instance.port,
        "/api/event",
        seconds,
        connections=CONNECTIONS,
        rate=rate,
        warmup=1.0,
        workdir=workdir,
    )
    ended = time.monotonic()
    window = sampler.between(started + 1.0 + seconds / 2, ended)
    lags = [sample[3] for sample in window if sample[3] == sample[3]]
    achieved = result["statuses"].get("202", 0) / result["duration"]
    max_lag = max(lags, default=0.0)
    final_lag = lags[-1] if lags else 0.0
    bounded = achieved >= MIN_ACCEPTED * rate and max_lag <= MAX_LAG_SECONDS
    attempt = Attempt(rate, achieved, max_lag, final_lag, bounded)
    say(
        f"  probe {rate:,.0f}/s for {seconds:.0f} s: accepted {achieved:,.0f}/s, stream lag max "
        f"{max_lag:.1f} s (2nd half) → {'bounded' if bounded else 'NOT bounded'}"
    )
    return attempt, result, started, ended


def _next_rate(attempts: list[Attempt]) -> float:
    """The next rate to probe (0: done)."""
    good = [a.rate for a in attempts if a.bounded]
    bad = [a.rate for a in attempts if not a.bounded]
    if good and bad:
        low, high = max(good), min(bad)
        return 0.0 if high <= low * 1.15 else round((low + high) / 2, -2)
    last = attempts[-1]
    if good:
        return round(last.rate * 1.5, -2)
    return max(100.0, round(min(last.rate * 0.6, last.achieved * 0.9), -2))


def run(quick: bool, workdir: Path, *, memory_only: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    probe_seconds, final_seconds = (8.0, 15.0) if quick else (20.0, 60.0)
    say(
        f"\n(e) sustained: embedded `ursa serve`, open-loop load ({CONNECTIONS} connections), "
        f"{final_seconds:.0f} s at the highest rate with bounded stream lag"
    )
    instance = start_instance(workdir)
    sampler = Sampler(instance)
    sampler.start()
    try:
        time.sleep(5.0)
        idle = [sample[1] for sample in sampler.samples]
        idle_rss = max(idle, default=0)

        # Find the rate: up from FIRST_RATE while bounded, down while not, then bisect.
        attempts: list[Attempt] = []
        rate = FIRST_RATE
        for _ in range(2 if quick else PROBES):
            attempt = _attempt(instance, sampler, rate, probe_seconds, workdir)[0]
            attempts.append(attempt)
            _wait_drained(instance, timeout=120)
            rate = _next_rate(attempts)
            if not rate:
                break
        bounded = [a.rate for a in attempts if a.bounded]
        rate = max(bounded) if bounded else min(a.rate for a in attempts)

        # The long run at that rate, with freshness probes.
        prober = Prober(instance)
        counter = StoredCounter(instance)
        counter.start()
        prober.start()
        attempt, result, started, ended = _attempt(instance, sampler, rate, final_seconds, workdir)
        counter.stop()
        prober.stop()
        # steady state: the last three quarters of the run
        stored_rate = counter.rate(ended - 0.75 * final_seconds, ended)
        drain_seconds = _wait_drained(instance, timeout=300)
        load_samples = sampler.between(started, ended + drain_seconds)
        peak_rss = max((sample[1] for sample in load_samples), default=0)
        hwm = max((sample[2] for sample in sampler.samples), default=0)
    finally:
        sampler.stop()
        stop(instance.process, timeout=180)

    fresh = prober.freshness()
    fresh_p95 = percentile(fresh, 0.95)
    lost = len(prober.accepted) - len(fresh)
    if not memory_only:
        emit(
            figures,
            Figure(
                "sustained",
                "offered rate (highest with bounded lag)",
                rate,
                "events/s",
                note="probes: "
                + ", ".join(
                    f"{a.rate:,.0f}/s {'ok' if a.bounded else 'unbounded'}" for a in attempts
                ),
            ),
        )
        emit(
            figures,
            Figure(
                "sustained",
                "stored rate",
                stored_rate,
                "events/s",
                target=">= 3,000/s",
                # The lag, not the share accepted, says whether the flush kept up with what
                # came in; a server accepting less than offered lowers the stored rate itself.
                met=stored_rate >= 3000 and attempt.max_lag <= MAX_LAG_SECONDS,
                note=f"accepted {attempt.achieved:,.0f}/s; stream lag max "
                f"{attempt.max_lag:.1f} s in the 2nd half; backlog drained "
                f"{drain_seconds:.1f} s after the load",
            ),
        )
        emit(
            figures,
            Figure(
                "sustained",
                "freshness p95 (202 → queryable)",
                fresh_p95,
                "s",
                target="<= 5 s",
                met=fresh_p95 <= 5.0,
                note=f"p50 {percentile(fresh, 0.5):.2f} s, max "
                f"{max(fresh, default=float('nan')):.2f} s over {len(fresh)} probes"
                + (f"; {lost} never found" if lost else ""),
            ),
        )
        emit(
            figures,
            Figure(
                "sustained",
                "latency under load p50 / p99",
                result["p50_ms"],
                "ms",
                note=f"p99 {result['p99_ms']:.1f} ms",
            ),
        )
    say("\n(f) memory of the `ursa serve` process tree (python + redis-server), sum of VmRSS")
    emit(figures, Figure("rss", "idle RSS", idle_rss / 2**20, "MiB"))
    emit(
        figures,
        Figure(
            "rss",
            "peak RSS during the load",
            peak_rss / 2**20,
            "MiB",
            target="<= 1 GiB",
            met=peak_rss <= GIB,
            note=f"sum of per-process VmHWM {hwm / 2**20:,.0f} MiB",
        ),
    )
    return figures
