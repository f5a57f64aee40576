"""HTTP load generator: raw asyncio sockets, keep-alive, N connections, one request in flight each.

Run as its own process (`python -m bench.load ...`) so its CPU is not the server's. Closed loop
(`--rate 0`: each connection sends the next request as soon as the answer arrives) measures
capacity; open loop (`--rate R`) sends on a fixed schedule and catches up when answers are late.
Parsing is minimal (status line + Content-Length), so the client costs little per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import percentile
from bench.traffic import DOMAIN
from bench.traffic import requests as build_requests


def raw_requests(
    host: str, port: int, path: str, count: int, seed: int, domain: str = DOMAIN
) -> list[bytes]:
    out = []
    for request in build_requests(count, seed=seed, domain=domain):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {request.user_agent}\r\n"
            f"Content-Type: text/plain\r\nX-Forwarded-For: {request.forwarded_for}\r\n"
            f"Content-Length: {len(request.body)}\r\n\r\n"
        )
        out.append(head.encode() + request.body)
    return out


@dataclass
class Stats:
    measure_from: float
    measure_until: float
    latencies_ms: array[float] = field(default_factory=lambda: array("f"))
    statuses: Counter[int] = field(default_factory=Counter)
    completed: int = 0
    errors: int = 0


class Connection(asyncio.Protocol):
    def __init__(self, loader: Loader, index: int) -> None:
        self.loader = loader
        self.index = index
        self.transport: Any = None  # an asyncio.Transport (uvloop's does not subclass it)
        self.buffer = b""
        self.sent_at = 0.0
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            marker = head.lower().find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(head[9:12])
            self.buffer = self.buffer[total:]
            self.busy = False
            self.loader.answered(self, status, time.perf_counter() - self.sent_at)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.busy:
            self.loader.stats.errors += 1


class Loader:
    def __init__(
        self, payloads: list[bytes], stats: Stats, rate: float, stop_at: float, connections: int
    ) -> None:
        self.payloads = payloads
        self.stats = stats
        self.rate = rate
        self.stop_at = stop_at
        self.connections = connections
        self.counter = 0
        self.loop = asyncio.get_running_loop()
        self.started = time.perf_counter()
        self.scheduled: dict[int, int] = {}  # connection index → requests it has sent

    def next_payload(self) -> bytes:
        self.counter += 1
        return self.payloads[self.counter % len(self.payloads)]

    def kick(self, conn: Connection) -> None:
        now = time.perf_counter()
        index = conn.index
        if now >= self.stop_at:
            return
        if self.rate <= 0:
            conn.send(self.next_payload())
            return
        sent = self.scheduled.get(index, 0)
        due = self.started + (index + sent * self.connections) / self.rate
        if due <= now:
            self.scheduled[index] = sent + 1
            conn.send(self.next_payload())
        else:
            self.loop.call_later(due - now, self.kick, conn)

    def answered(self, conn: Connection, status: int, seconds: float) -> None:
        now = time.perf_counter()
        stats = self.stats
        if stats.measure_from <= now < stats.measure_until:
            stats.completed += 1
            stats.statuses[status] += 1
            stats.latencies_ms.append(seconds * 1000)
        self.kick(conn)


async def run(
    host: str,
    port: int,
    path: str,
    connections: int,
    duration: float,
    warmup: float,
    rate: float,
    payloads: list[bytes],
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    stats = Stats(measure_from=start + warmup, measure_until=start + warmup + duration)
    loader = Loader(payloads, stats, rate, stats.measure_until, connections)
    conns: list[Connection] = []
    for index in range(connections):
        _, conn = await loop.create_connection(partial(Connection, loader, index), host, port)
        conns.append(conn)
    for conn in conns:
        loader.kick(conn)
    await asyncio.sleep(max(0.0, stats.measure_from - time.perf_counter()))
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, stats.measure_until - time.perf_counter()))
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(0.5)  # let answers in flight arrive (not counted)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    latencies = list(stats.latencies_ms)
    cpu = (usage_end.ru_utime - usage_start.ru_utime) + (usage_end.ru_stime - usage_start.ru_stime)
    return {
        "completed": stats.completed,
        "per_second": stats.completed / duration,
        "statuses": {str(code): n for code, n in stats.statuses.items()},
        "errors": stats.errors,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "client_cpu": cpu / duration,
        "duration": duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/event")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = closed loop")
    parser.add_argument("--distinct", type=int, default=4096, help="distinct requests cycled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--domain", default=DOMAIN, help="the site the events are for")
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    payloads = raw_requests(args.host, args.port, args.path, args.distinct, args.seed, args.domain)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run(
            args.host,
            args.port,
            args.path,
            args.connections,
            args.duration,
            args.warmup,
            args.rate,
            payloads,
        )
    )
    Path(args.json_out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
