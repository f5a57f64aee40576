"""(a) Ingest: events/s that one `ursa web` process accepts on `/api/event`, vs a bare route;
and the same with observability on (logs at INFO, metrics, traces exported over OTLP to a
loopback receiver) at the default sampling and at 100 %, vs off, in the same run; and with the
capacity rule on (the events of a site whose organization is on the Free plan, under its limit
and collecting: the rule's answer held in process, fetched again every 5 s) vs off (a site of
no organization, whose events the rule lets through without a lookup).

Both servers run the same app and uvicorn configuration on one core each of the loopback; the
load generator (`bench.load`, its own process) keeps 16 keep-alive connections busy. Metrics
are always on (there is no switch): "off" means logs at WARNING and no trace export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from bench.bare_app import BARE_PATH
from bench.common import (
    LOOPBACK,
    Figure,
    emit,
    free_port,
    python_env,
    redis_server,
    say,
    stop,
    ursa_command,
    wait_http,
)
from bench.traffic import DOMAIN
from tests.integration.otlp_receiver import TRACES_PATH, OtlpReceiver

CAPACITY_DOMAIN = "capacity.bench.example"
CAPACITY_OWNER = "bench-capacity@example.com"

CONNECTIONS = 16
DEFAULT_SAMPLING = 0.1  # OTEL_TRACES_SAMPLER_ARG's default
OBSERVED_ROUNDS = 2
STREAM = "bench:ingest"


def run_loader(
    port: int,
    path: str,
    duration: float,
    *,
    connections: int = CONNECTIONS,
    rate: float = 0.0,
    warmup: float = 1.0,
    domain: str = DOMAIN,
    workdir: Path,
) -> dict[str, Any]:
    out = workdir / f"load-{port}-{path.strip('/').replace('/', '-')}.json"
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--port",
        str(port),
        "--path",
        path,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--rate",
        str(rate),
        "--domain",
        domain,
        "--json-out",
        str(out),
    ]
    subprocess.run(command, env=python_env(), check=True, timeout=duration + warmup + 120)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _server_env(data_dir: Path, redis_url: str, port: int, **observability: str) -> dict[str, str]:
    return python_env(
        URSA_DATA_DIR=str(data_dir),
        REDIS_URL=redis_url,
        PORT=str(port),
        METRICS_PORT=str(free_port()),
        TRUSTED_PROXIES=LOOPBACK,
        # Far above the offered load: the caps are checked (their cost is measured), never hit.
        INGEST_SITE_EVENTS_PER_MINUTE=str(10**9),
        BUFFER_STREAM=STREAM,
        **{"LOG_LEVEL": "WARNING", **observability},
    )


def _observed(receiver: OtlpReceiver, share: float) -> dict[str, str]:
    return {
        "LOG_LEVEL": "INFO",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_TRACES_SAMPLER_ARG": str(share),
    }


def _measure(
    command: list[str],
    env: dict[str, str],
    port: int,
    path: str,
    duration: float,
    workdir: Path,
    log_name: str,
    domain: str = DOMAIN,
) -> dict[str, Any]:
    with (workdir / log_name).open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://{LOOPBACK}:{port}/healthz", process=process)
        return run_loader(port, path, duration, domain=domain, workdir=workdir)
    finally:
        stop(process)


def run(quick: bool, workdir: Path) -> list[Figure]:
    duration = 3.0 if quick else 10.0
    figures: list[Figure] = []
    say(
        f"\n(a) ingest: {CONNECTIONS} connections, {duration:.0f} s per endpoint, Python "
        "asyncio raw-socket load generator in its own process"
    )
    with redis_server(workdir / "ingest-redis") as redis_url:
        data_dir = workdir / "ingest-data"
        env = _server_env(data_dir, redis_url, 0)
        subprocess.run(
            [*ursa_command(), "sites", "add", DOMAIN],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _add_capacity_site(env)

        port = free_port()
        bare = _measure(
            [sys.executable, "-m", "bench.bare_app", "--port", str(port)],
            _server_env(data_dir, redis_url, port),
            port,
            BARE_PATH,
            duration,
            workdir,
            "bare.log",
        )

        def web(log_name: str, domain: str = DOMAIN, **observability: str) -> dict[str, Any]:
            port = free_port()
            return _measure(
                [*ursa_command(), "web"],
                _server_env(data_dir, redis_url, port, **observability),
                port,
                "/api/event",
                duration,
                workdir,
                log_name,
                domain,
            )

        ingest = web("web.log")
        client = redis.Redis.from_url(redis_url)
        buffered = int(client.xlen(STREAM))
        client.close()
        # Observability off and on alternate (off, 10%, 100%, off, 10%, 100%), so a drift of the
        # host's speed during the section weighs on both sides of each ratio.
        plain = [ingest]
        capacity: list[dict[str, Any]] = []
        observed: dict[float, list[dict[str, Any]]] = {DEFAULT_SAMPLING: [], 1.0: []}
        with OtlpReceiver().running() as receiver:
            for round_ in range(OBSERVED_ROUNDS):
                if round_:
                    plain.append(web(f"web-{round_}.log"))
                capacity.append(web(f"web-capacity-{round_}.log", CAPACITY_DOMAIN))
                for share, results in observed.items():
                    log_name = f"web-observed-{share}-{round_}.log"
                    results.append(web(log_name, **_observed(receiver, share)))
            spans = len(receiver.bodies(TRACES_PATH))

    accepted = ingest["statuses"].get("202", 0) / ingest["duration"]
    other = {code: n for code, n in ingest["statuses"].items() if code != "202"}
    bare_rate = bare["statuses"].get("204", 0) / bare["duration"]  # only real bare answers count
    ratio = accepted / bare_rate if bare_rate else 0.0
    emit(
        figures,
        Figure(
            "ingest",
            "bare endpoint (204, no work)",
            bare_rate,
            "req/s",
            note=f"p50 {bare['p50_ms']:.2f} ms, p99 {bare['p99_ms']:.2f} ms; "
            f"load generator used {bare['client_cpu']:.0%} of a core",
        ),
    )
    emit(
        figures,
        Figure(
            "ingest",
            "/api/event accepted (202) on `ursa web`",
            accepted,
            "events/s",
            note=f"load generator used {ingest['client_cpu']:.0%} "
            f"of a core; {buffered:,} entries buffered in Redis"
            + (f"; other answers {other}" if other else ""),
        ),
    )
    emit(
        figures,
        Figure("ingest", "ingest / bare", ratio * 100, "%", target=">= 50%", met=ratio >= 0.5),
    )
    emit(figures, Figure("ingest", "/api/event latency p50", ingest["p50_ms"], "ms"))
    emit(figures, Figure("ingest", "/api/event latency p99", ingest["p99_ms"], "ms"))
    plain_rate = _accepted_rate(plain)
    for share, results in observed.items():
        rate = _accepted_rate(results)
        kept = rate / plain_rate if plain_rate else 0.0
        default = share == DEFAULT_SAMPLING
        emit(
            figures,
            Figure(
                "ingest",
                f"observability on, {share:.0%} of traces sampled / off",
                kept * 100,
                "%",
                target=">= 90%" if default else "",
                met=kept >= 0.9 if default else None,
                note=f"{rate:,.0f} against {plain_rate:,.0f} events/s over "
                f"{OBSERVED_ROUNDS} alternating runs each; {spans:,} OTLP exports received in all",
            ),
        )
    capacity_rate = _accepted_rate(capacity)
    kept = capacity_rate / plain_rate if plain_rate else 0.0
    emit(
        figures,
        Figure(
            "ingest",
            "capacity rule on / off",
            kept * 100,
            "%",
            target=">= 95%",
            met=kept >= 0.95,
            note=f"{capacity_rate:,.0f} against {plain_rate:,.0f} events/s over "
            f"{OBSERVED_ROUNDS} alternating runs each",
        ),
    )
    return figures


def _add_capacity_site(env: dict[str, str]) -> None:
    """A site in the organization of a new user (Free plan, nothing counted: collecting)."""
    owner_env = {**env, "URSA_PASSWORD": "bench capacity password"}
    for command in (
        ["users", "create", "--email", CAPACITY_OWNER],
        ["sites", "add", CAPACITY_DOMAIN, "--owner", CAPACITY_OWNER],
    ):
        subprocess.run(
            [*ursa_command(), *command], env=owner_env, check=True, stdout=subprocess.DEVNULL
        )


def _accepted_rate(results: list[dict[str, Any]]) -> float:
    """202 answers per second over several runs of the load."""
    seconds: float = sum(result["duration"] for result in results)
    answered: int = sum(result["statuses"].get("202", 0) for result in results)
    return answered / seconds
