"""(c) Dashboard card latency and (d) bytes on disk per event, over demo data.

Runs in its own process (`python -m bench.dashboard`): one chDB directory with two sites, a
small one and a large one, filled by `app.cli.demo.generate`. Every card of `app.dashboard.CARDS` is
requested through the product's HTTP card endpoint (login session, rate limit, route, site
lookup, queries, template), one after the other, for the last 30 days, by a member of the
sites' organization (a new one per measurement: each has its own per-user request budget).
Bytes on disk are read from `system.parts` after `OPTIMIZE TABLE ... FINAL`; the visitor rollups
are also rebuilt beside themselves from the same events with the visitor precision they had
before migration 0002, so the bytes of both precisions come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from app.accounts.request_auth import CookieNames
from app.accounts.users import create_user
from app.accounts.web_sessions import Stage
from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import ClickHouse, Row
from app.cli.demo import generate
from app.dashboard.cards import CARDS
from app.main import create_app
from app.models import Membership, Role, Site, User
from app.server.migrate import migrate_app_db
from app.services import Services
from app.settings import Settings
from app.sites.registry import add_site
from bench.common import Figure, emit, percentile, redis_server, say, write_figures

TABLES = ("events", "performance", "totals_hourly", "breakdowns_daily", "vitals_daily")
VISITOR_ROLLUPS = {"totals_hourly": "totals_hourly_mv", "breakdowns_daily": "breakdowns_daily_mv"}
VISITOR_COLUMN = "unique_visitors"
PRECISION, PRECISION_BEFORE = 18, 12  # uniqCombined's: 0002_exact_visitors.sql, 0001_schema.sql
_VIEW_QUERY = """
SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = {view:String}
"""
_VIEW_COLUMNS = """
SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {view:String}
ORDER BY position
"""
_PARTS = """
SELECT table, sum(rows) AS rows, sum(data_compressed_bytes) AS compressed,
       sum(data_uncompressed_bytes) AS uncompressed
FROM system.parts
WHERE active AND database = currentDatabase() AND table IN {tables:Array(String)}
GROUP BY table
"""
CARD_TARGET_MS = 300.0
MERGE_WAIT_SECONDS = 180
MERGE_QUIET_SECONDS = 10


async def _time_cards(services: Services, domain: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per card and for all cards, over `rounds` (after one warm-up round)."""
    app = create_app(services.settings, services)
    timings: dict[str, list[float]] = {name: [] for name in CARDS}
    timings["all"] = []
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        cookie = CookieNames.of(services.settings).session
        client.cookies.set(cookie, await _member_session(services, domain))
        for round_no in range(rounds + 1):
            total = 0.0
            for name in CARDS:
                started = time.perf_counter()
                response = await client.get(
                    f"/{domain}/cards/{name}",
                    params={"period": "30d"},
                    headers={"hx-request": "true"},
                )
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"card {name}: {response.status_code} {response.text[:200]}")
                total += elapsed
                if round_no:
                    timings[name].append(elapsed)
            if round_no:
                timings["all"].append(total)
    return timings


def _card_figures(
    figures: list[Figure], label: str, timings: dict[str, list[float]], held: bool
) -> None:
    slowest = max(CARDS, key=lambda name: percentile(timings[name], 0.95))
    slowest_p95 = percentile(timings[slowest], 0.95)
    all_p95 = percentile(timings["all"], 0.95)
    target = f"<= {CARD_TARGET_MS:.0f} ms" if held else ""
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}: all {len(CARDS)} cards p50",
            percentile(timings["all"], 0.5),
            "ms",
        ),
    )
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}: all {len(CARDS)} cards p95",
            all_p95,
            "ms",
            target=target,
            met=all_p95 <= CARD_TARGET_MS if held else None,
            note="cards one after another, as chDB serializes queries",
        ),
    )
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}: slowest card p95",
            slowest_p95,
            "ms",
            target=target,
            met=slowest_p95 <= CARD_TARGET_MS if held else None,
            note=f"'{slowest}'; per card p95: "
            + ", ".join(f"{name} {percentile(timings[name], 0.95):.0f}" for name in CARDS),
        ),
    )


def _bytes_on_disk(gateway: ClickHouse, figures: list[Figure]) -> None:
    for table in TABLES:
        gateway.command(f"OPTIMIZE TABLE {table} FINAL")
    parts = _parts(gateway, TABLES)
    by_table = {row["table"]: row for row in parts}
    events = int(by_table["events"]["rows"])
    total = sum(int(row["compressed"]) for row in parts)
    per_event = total / events
    detail = "; ".join(
        f"{table} {int(by_table[table]['compressed']) / events:.1f} B/event "
        f"({int(by_table[table]['rows']):,} rows, "
        f"{int(by_table[table]['uncompressed']) / max(int(by_table[table]['compressed']), 1):.0f}x)"
        for table in TABLES
        if table in by_table
    )
    emit(
        figures,
        Figure(
            "bytes",
            "bytes on disk per event",
            per_event,
            "B/event",
            target="<= 40",
            met=per_event <= 40,
            note=f"{events:,} events, {total / 2**20:,.0f} MiB after OPTIMIZE FINAL; " + detail,
        ),
    )
    _visitor_precision_bytes(gateway, figures, events)


def _parts(gateway: ClickHouse, tables: Iterable[str]) -> list[Row]:
    """Rows and compressed and uncompressed bytes of the active parts, per table."""
    return gateway.query("bench_parts", _PARTS, {"tables": list(tables)})


def _rollup_at_precision_before(gateway: ClickHouse, rollup: str, view: str) -> str:
    """A copy of `rollup` whose visitor states have `PRECISION_BEFORE`, filled by its view's own
    query over all of `events`, merged; returns the copy's name."""
    copy = f"bench_{rollup}_p{PRECISION_BEFORE}"
    state = f"AggregateFunction(uniqCombined({PRECISION_BEFORE}), UInt64)"
    query = gateway.query("bench_view_query", _VIEW_QUERY, {"view": view})[0]["as_select"]
    now, before = (
        f"uniqCombinedState({precision})(" for precision in (PRECISION, PRECISION_BEFORE)
    )
    if now not in query:
        raise RuntimeError(f"{view} does not compute {now}...): update bench/dashboard.py")
    columns = ", ".join(
        row["name"] for row in gateway.query("bench_view", _VIEW_COLUMNS, {"view": view})
    )
    for sql in (
        f"DROP TABLE IF EXISTS {copy}",
        f"CREATE TABLE {copy} AS {rollup}",
        f"ALTER TABLE {copy} DROP COLUMN {VISITOR_COLUMN}",
        f"ALTER TABLE {copy} ADD COLUMN {VISITOR_COLUMN} {state}",
        f"INSERT INTO {copy} ({columns}) {query.replace(now, before)}",
        f"OPTIMIZE TABLE {copy} FINAL",
    ):
        gateway.command(sql)
    return copy


def _visitor_precision_bytes(gateway: ClickHouse, figures: list[Figure], events: int) -> None:
    """Bytes per event of the visitor rollups at the precision before 0002 and now."""
    copies = [_rollup_at_precision_before(gateway, *pair) for pair in VISITOR_ROLLUPS.items()]
    before, now = (
        sum(int(row["compressed"]) for row in _parts(gateway, tables))
        for tables in (copies, VISITOR_ROLLUPS)
    )
    for precision, compressed in ((PRECISION_BEFORE, before), (PRECISION, now)):
        emit(
            figures,
            Figure(
                "bytes",
                f"visitor rollups, uniqCombined({precision})",
                compressed / events,
                "B/event",
                note=f"{' + '.join(VISITOR_ROLLUPS)}: {compressed / 2**20:,.1f} MiB for "
                f"{events:,} events after OPTIMIZE FINAL",
            ),
        )
    emit(
        figures,
        Figure(
            "bytes",
            f"visitor rollups: uniqCombined({PRECISION}) / ({PRECISION_BEFORE})",
            now / before,
            "x",
            note="bytes on disk of the same rows, visitor states of either precision",
        ),
    )
    for copy in copies:
        gateway.command(f"DROP TABLE {copy}")


def _wait_for_merges(gateway: ClickHouse) -> float:
    """Let the merges that a bulk load of demo data starts finish (a dashboard is normally read
    long after its data arrived): wait until none has run for `MERGE_QUIET_SECONDS`, at most
    `MERGE_WAIT_SECONDS`; return the seconds waited."""
    started = quiet_since = time.monotonic()
    while time.monotonic() - started < MERGE_WAIT_SECONDS:
        if gateway.query("bench_merges", "SELECT count() AS n FROM system.merges")[0]["n"]:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= MERGE_QUIET_SECONDS:
            break
        time.sleep(0.5)
    return time.monotonic() - started


async def _add_sites(services: Services, domains: list[str]) -> list[int]:
    """The sites, owned by one organization (its owner never logs in)."""
    owner = await _new_user(services)
    ids = []
    async with services.sessions() as session:
        rows = await session.exec(select(Membership).where(Membership.user_id == owner.id))
        organization_id = rows.one().organization_id
    for domain in domains:
        site = await add_site(services.sessions, domain)
        assert site.id is not None
        async with services.sessions() as session:
            site.organization_id = organization_id
            session.add(site)
            await session.commit()
        ids.append(site.id)
    return ids


async def _new_user(services: Services) -> User:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    return await create_user(services.sessions, email, secrets.token_urlsafe(), verified=True)


async def _member_session(services: Services, domain: str) -> str:
    """A logged-in session of a new viewer of `domain`'s organization."""
    user = await _new_user(services)
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == domain))).one()
        assert site.organization_id is not None
        assert user.id is not None
        member = Membership(user_id=user.id, organization_id=site.organization_id, role=Role.VIEWER)
        session.add(member)
        await session.commit()
    token, _ = await services.web_sessions.create(user.id, Stage.FULL)
    return token


def measure(sizes: list[int], rounds: int, *, cards: bool, on_disk: bool) -> list[Figure]:
    return asyncio.run(_measure(sizes, rounds, cards=cards, on_disk=on_disk))


async def _measure(sizes: list[int], rounds: int, *, cards: bool, on_disk: bool) -> list[Figure]:
    """One event loop for everything (the app database's engine belongs to it)."""
    figures: list[Figure] = []
    with (
        tempfile.TemporaryDirectory(prefix="ursa-bench-dash-") as folder,
        redis_server(Path(folder) / "redis") as redis_url,
    ):
        settings = Settings(
            _env_file=None, URSA_DATA_DIR=Path(folder), REDIS_URL=redis_url, LOG_LEVEL="WARNING"
        ).with_secrets()
        migrate_app_db(settings)
        gateway = ClickHouse(settings.clickhouse_dsn)
        schema.migrate(gateway)
        services = Services(settings, gateway=gateway)
        domains = [f"demo-{size}.example" for size in sizes]
        site_ids = await _add_sites(services, domains)
        for size, domain, site_id in zip(sizes, domains, site_ids, strict=True):
            started = time.perf_counter()
            written = generate(gateway, site_id, days=30, events=size, seed=size, hostname=domain)
            seconds = time.perf_counter() - started
            emit(
                figures,
                Figure(
                    "demo",
                    f"demo-data generate+insert, {size:,} events",
                    written / seconds,
                    "events/s",
                    note=f"{seconds:.1f} s (app.cli.demo.generate into chDB)",
                ),
            )
        if cards:
            waited = _wait_for_merges(gateway)
            say(
                f"\n(c) dashboard: all {len(CARDS)} cards via the HTTP card endpoint, 30 days,"
                f" {rounds} rounds after a warm-up (background merges of the load settled"
                f" after {waited:.0f} s)"
            )
            timings: dict[str, Any] = {}
            for size, domain in zip(sizes, domains, strict=True):
                timings[domain] = await _time_cards(services, domain, rounds)
                _card_figures(figures, f"{size:,} events", timings[domain], held=size == max(sizes))
        if on_disk:
            say("\n(d) bytes on disk: events, performance and rollups, after OPTIMIZE FINAL")
            _bytes_on_disk(gateway, figures)
        if cards and on_disk:
            domain = domains[-1]
            _wait_for_merges(gateway)
            after = await _time_cards(services, domain, rounds)
            _card_figures(figures, f"{sizes[-1]:,} events, parts merged", after, held=False)
        await services.aclose()
        gateway.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-cards", action="store_true")
    parser.add_argument("--no-bytes", action="store_true")
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    sizes = [int(size) for size in args.sizes.split(",")]
    figures = measure(sizes, args.rounds, cards=not args.no_cards, on_disk=not args.no_bytes)
    write_figures(args.json_out, figures)


if __name__ == "__main__":
    main()
