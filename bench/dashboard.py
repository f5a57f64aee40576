"""(c) Dashboard and Stats API latency and (d) bytes on disk per event, over demo data.

Runs in its own process (`python -m bench.dashboard`): one chDB directory with one site per
dataset (`--datasets EVENTS:PERIOD,...`, say 10,000,000 events over the 30 days of `30d` and
as many over the days of `12mo`), each filled by `app.cli.demo.generate` over exactly the days
of its period, with the demo's custom events as goals. Everything is requested through the
product's HTTP endpoints (login session or API key, rate limit, route, site lookup, queries,
template), one request after the other, over the dataset's whole period:

* every card of `app.dashboard.cards.CARDS` with its default tab, as a dashboard load does (the
  sum per round is "all cards"), then every other tab of each card, for the view unfiltered,
  with one filter and with three filters including a custom property (`VIEWS`);
* the Stats API v2 (`POST /api/v2/query`): a breakdown by `event:page` with one filter;
* the header's realtime count (`/{domain}/cards/current-visitors`).

A new member of the sites' organization (and a new API key) takes over every
`REQUESTS_PER_MEMBER` requests: each has its own request budget. The time of each named
ClickHouse query is recorded too (chDB has no `system.query_log`), so the slowest queries of a
view are printed beside its figures. Bytes on disk are read from `system.parts` after
`OPTIMIZE TABLE ... FINAL`; the visitor rollups are also rebuilt beside themselves from the same
events with the visitor precision they had before migration 0002, so the bytes of both
precisions come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from app.accounts.api_keys import create_key
from app.accounts.request_auth import CookieNames
from app.accounts.users import create_user
from app.accounts.web_sessions import Stage
from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import ClickHouse, Row
from app.analytics.queries.periods import resolve_period
from app.billing.plans import PREMIUM
from app.billing.staff import set_plan
from app.cli.demo import generate
from app.dashboard.cards import CARDS, CURRENT_VISITORS
from app.main import create_app
from app.models import Membership, Role, Site, User
from app.server.migrate import migrate_app_db
from app.services import Services
from app.settings import Settings
from app.sites.registry import add_site, update_site
from bench.common import Figure, emit, percentile, redis_server, say, write_figures

TABLES = (
    "events",
    "performance",
    "engagement",
    "totals_hourly",
    "totals_daily",
    "breakdowns_daily",
    "vitals_daily",
    "engagement_daily",
)
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
MERGE_WAIT_SECONDS = 180
MERGE_QUIET_SECONDS = 10
# The demo's custom events and one page, as a site would configure them (the goals card).
GOALS = ("Signup", "Download", "Outbound Link: Click", "Visit /pricing")
# Under the per-user budget (`app.cache.ratelimit.APP_PER_USER`, 300 a minute) and the per-key
# one (`API_PER_KEY`, 600 an hour).
REQUESTS_PER_MEMBER = 250
REQUESTS_PER_KEY = 500


@dataclass(frozen=True)
class DashboardView:
    """A dashboard URL's filters (`f=`, in the form `app.dashboard.view` writes) and the p95
    that all cards of it are held against."""

    label: str
    filters: tuple[str, ...]
    target_ms: float


# Common values of the demo data: its second page, its largest search engine and country, and
# a property of its `Signup` events.
VIEWS = (
    DashboardView("unfiltered", (), 150.0),
    DashboardView("one filter", ("page:is:/pricing",), 400.0),
    DashboardView(
        "three filters", ("source:is:Google", "country:is:US", "prop:plan:is:pro"), 600.0
    ),
)
API_TARGET_MS = 150.0
REALTIME_TARGET_MS = 20.0
REALTIME_ROUNDS_FACTOR = 5  # the header's count is cheap: more samples for its p95
API_FILTER = ["is", "visit:source", ["Google"]]


@dataclass(frozen=True)
class Dataset:
    """`events` demo events over the days of the dashboard period `period` ("30d", "12mo")."""

    events: int
    period: str
    days: int

    @property
    def domain(self) -> str:
        return f"demo-{self.events}-{self.period}.example"

    @property
    def label(self) -> str:
        return f"{self.events:,} events, {self.period}"

    @classmethod
    def parse(cls, text: str, today: dt.datetime) -> Dataset:
        """`EVENTS:PERIOD`; its days are those `PERIOD` covers (in UTC) as of `today`."""
        events, _, period = text.partition(":")
        resolved = resolve_period(period or "30d", "UTC", today)
        return cls(int(events), resolved.key, resolved.days)


class TimedClickHouse(ClickHouse):
    """The gateway, keeping the milliseconds of each named query (chDB has no query log)."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.timings: dict[str, list[float]] = defaultdict(list)

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        started = time.perf_counter()
        rows = super().query(name, sql, params)
        self.timings[name].append((time.perf_counter() - started) * 1000)
        return rows


class Visitor:
    """The app over ASGI, as members of the site's organization: a new member (a new login
    session, and a new API key) every `REQUESTS_PER_MEMBER` requests."""

    def __init__(self, services: Services, client: httpx.AsyncClient, domain: str) -> None:
        self.services, self.client, self.domain = services, client, domain
        self.requests = self.api_requests = 0
        self.api_key = ""

    async def card(self, name: str, params: Sequence[tuple[str, str]]) -> float:
        if self.requests % REQUESTS_PER_MEMBER == 0:
            cookie = CookieNames.of(self.services.settings).session
            self.client.cookies.set(cookie, await _member_session(self.services, self.domain))
        self.requests += 1
        return await self._timed(
            "GET", f"/{self.domain}/cards/{name}", params=params, headers={"hx-request": "true"}
        )

    async def api(self, body: dict[str, Any]) -> float:
        if self.api_requests % REQUESTS_PER_KEY == 0:
            user = await _member(self.services, self.domain)
            self.api_key = (await create_key(self.services.sessions, user, "bench"))[1]
        self.api_requests += 1
        headers = {"authorization": f"Bearer {self.api_key}"}
        return await self._timed("POST", "/api/v2/query", json=body, headers=headers)

    async def _timed(self, method: str, url: str, **kwargs: Any) -> float:
        started = time.perf_counter()
        response = await self.client.request(method, url, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return elapsed


@dataclass(frozen=True)
class Rounds:
    """How many times (after a warm-up) all cards, and each other tab, are requested."""

    cards: int
    tabs: int


@dataclass
class CardTimings:
    """Milliseconds over the rounds: all cards with their default tab together, each card's
    default tab, and every tab (`card/tab`)."""

    all: list[float]
    cards: dict[str, list[float]]
    tabs: dict[str, list[float]]
    queries: dict[str, list[float]]


def _view_params(dataset: Dataset, view: DashboardView) -> list[tuple[str, str]]:
    return [("period", dataset.period), *(("f", item) for item in view.filters)]


async def _time_cards(
    visitor: Visitor, gateway: TimedClickHouse, params: list[tuple[str, str]], rounds: Rounds
) -> CardTimings:
    """All cards with their default tabs, `rounds.cards` times after a warm-up round; then each
    other tab of each card, `rounds.tabs` times after a warm-up, tab after tab."""
    timings = CardTimings([], defaultdict(list), defaultdict(list), {})
    for round_no in range(rounds.cards + 1):
        if round_no == 1:
            gateway.timings.clear()
        total = 0.0
        for name in CARDS:
            elapsed = await visitor.card(name, params)
            total += elapsed
            if round_no:
                timings.cards[name].append(elapsed)
                first = CARDS[name].tabs[:1]
                if first:
                    timings.tabs[f"{name}/{first[0].name}"].append(elapsed)
        if round_no:
            timings.all.append(total)
    timings.queries = {name: list(values) for name, values in gateway.timings.items()}
    for name, card in CARDS.items():
        for tab in card.tabs[1:]:
            for round_no in range(rounds.tabs + 1):
                elapsed = await visitor.card(name, [*params, ("tab", tab.name)])
                if round_no:
                    timings.tabs[f"{name}/{tab.name}"].append(elapsed)
    return timings


def _p95(values: Sequence[float]) -> float:
    return percentile(values, 0.95)


def _card_figures(
    figures: list[Figure], label: str, view: DashboardView, timings: CardTimings
) -> None:
    all_p95 = _p95(timings.all)
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}, {view.label}: all {len(CARDS)} cards p50",
            percentile(timings.all, 0.5),
            "ms",
        ),
    )
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}, {view.label}: all {len(CARDS)} cards p95",
            all_p95,
            "ms",
            target=f"<= {view.target_ms:.0f} ms",
            met=all_p95 <= view.target_ms,
            note="default tabs, one card after another; per card p95: "
            + ", ".join(f"{name} {_p95(timings.cards[name]):.0f}" for name in CARDS),
        ),
    )
    slowest = {
        name: max(
            (key for key in timings.tabs if key.startswith(f"{name}/")), key=_tab_p95(timings)
        )
        for name, card in CARDS.items()
        if card.tabs
    }
    emit(
        figures,
        Figure(
            "dashboard",
            f"{label}, {view.label}: slowest tab p95",
            max(_p95(timings.tabs[key]) for key in slowest.values()),
            "ms",
            note="slowest tab of each card: "
            + ", ".join(f"{key} {_p95(timings.tabs[key]):.0f}" for key in slowest.values()),
        ),
    )
    per_round = sorted(
        (
            (sum(values) / len(timings.all), name, percentile(values, 0.5))
            for name, values in timings.queries.items()
        ),
        reverse=True,
    )
    say(
        "    queries of the default tabs, ms per round (median of one call): "
        + ", ".join(f"{name} {total:.0f} ({median:.0f})" for total, name, median in per_round[:8])
    )


def _tab_p95(timings: CardTimings) -> Any:
    return lambda key: _p95(timings.tabs[key])


async def _time_api(visitor: Visitor, dataset: Dataset, rounds: int) -> list[float]:
    """A Stats API v2 breakdown by page with one filter, `rounds` times after a warm-up."""
    body = {
        "site_id": dataset.domain,
        "metrics": ["visitors", "pageviews"],
        "date_range": dataset.period,
        "dimensions": ["event:page"],
        "filters": [API_FILTER],
    }
    return [await visitor.api(body) for _ in range(rounds + 1)][1:]


async def _time_realtime(visitor: Visitor, rounds: int) -> list[float]:
    """The header's current visitors, `rounds` times after a warm-up."""
    return [await visitor.card(CURRENT_VISITORS.name, ()) for _ in range(rounds + 1)][1:]


def _latency_figures(
    figures: list[Figure], name: str, values: list[float], target_ms: float, note: str
) -> None:
    p95 = _p95(values)
    emit(
        figures,
        Figure(
            "dashboard",
            f"{name} p95",
            p95,
            "ms",
            target=f"<= {target_ms:.0f} ms",
            met=p95 <= target_ms,
            note=f"p50 {percentile(values, 0.5):.1f} ms, {len(values)} requests; {note}",
        ),
    )


async def _measure_dataset(
    services: Services, gateway: TimedClickHouse, dataset: Dataset, rounds: Rounds
) -> list[Figure]:
    figures: list[Figure] = []
    await _on_premium(services, dataset.domain)  # the plan with the Stats API
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        visitor = Visitor(services, client, dataset.domain)
        for view in VIEWS:
            timings = await _time_cards(visitor, gateway, _view_params(dataset, view), rounds)
            _card_figures(figures, dataset.label, view, timings)
        gateway.timings.clear()
        api = await _time_api(visitor, dataset, rounds.cards)
        _latency_figures(
            figures,
            f"{dataset.label}: Stats API v2 breakdown by page, 1 filter",
            api,
            API_TARGET_MS,
            f"POST /api/v2/query, filter {API_FILTER}; queries: {_query_medians(gateway)}",
        )
        gateway.timings.clear()
        realtime = await _time_realtime(visitor, rounds.cards * REALTIME_ROUNDS_FACTOR)
        _latency_figures(
            figures,
            f"{dataset.label}: realtime header",
            realtime,
            REALTIME_TARGET_MS,
            f"GET /{{domain}}/cards/{CURRENT_VISITORS.name}; queries: {_query_medians(gateway)}",
        )
    return figures


def _query_medians(gateway: TimedClickHouse) -> str:
    return ", ".join(
        f"{name} {percentile(values, 0.5):.1f} ms" for name, values in gateway.timings.items()
    )


async def _time_unfiltered_again(
    services: Services, gateway: TimedClickHouse, dataset: Dataset, rounds: int
) -> list[Figure]:
    """All cards unfiltered once more, once parts are merged (`OPTIMIZE ... FINAL`)."""
    figures: list[Figure] = []
    await _on_premium(services, dataset.domain)  # the plan with the Stats API
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        visitor = Visitor(services, client, dataset.domain)
        params = _view_params(dataset, VIEWS[0])
        totals = []
        for round_no in range(rounds + 1):
            total = 0.0
            for name in CARDS:
                total += await visitor.card(name, params)
            if round_no:
                totals.append(total)
    for q, label in ((0.5, "p50"), (0.95, "p95")):
        emit(
            figures,
            Figure(
                "dashboard",
                f"{dataset.label}, unfiltered, parts merged: all {len(CARDS)} cards {label}",
                percentile(totals, q),
                "ms",
            ),
        )
    return figures


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


async def _existing_sites(services: Services) -> set[str]:
    async with services.sessions() as session:
        return set((await session.exec(select(Site.domain))).all())


async def _add_sites(services: Services, domains: list[str]) -> list[int]:
    """The sites with the demo's goals (`GOALS`), owned by one organization (its owner never
    logs in)."""
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
        await update_site(services.sessions, site, goals=list(GOALS))
        ids.append(site.id)
    return ids


async def _on_premium(services: Services, domain: str) -> None:
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == domain))).one()
    assert site.organization_id is not None
    await set_plan(services.sessions, services.capacity, site.organization_id, PREMIUM.code)


async def _new_user(services: Services) -> User:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    return await create_user(services.sessions, email, secrets.token_urlsafe(), verified=True)


async def _member(services: Services, domain: str) -> User:
    """A new viewer of `domain`'s organization."""
    user = await _new_user(services)
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == domain))).one()
        assert site.organization_id is not None
        assert user.id is not None
        member = Membership(user_id=user.id, organization_id=site.organization_id, role=Role.VIEWER)
        session.add(member)
        await session.commit()
    return user


async def _member_session(services: Services, domain: str) -> str:
    """A logged-in session of a new viewer of `domain`'s organization."""
    user = await _member(services, domain)
    assert user.id is not None
    token, _ = await services.web_sessions.create(user.id, Stage.FULL)
    return token


def measure(
    datasets: list[Dataset],
    rounds: Rounds,
    *,
    cards: bool,
    on_disk: bool,
    data_dir: Path | None = None,
) -> list[Figure]:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_measure(datasets, rounds, data_dir, cards=cards, on_disk=on_disk))
    with tempfile.TemporaryDirectory(prefix="ursa-bench-dash-") as folder:
        return asyncio.run(_measure(datasets, rounds, Path(folder), cards=cards, on_disk=on_disk))


async def _measure(
    datasets: list[Dataset], rounds: Rounds, folder: Path, *, cards: bool, on_disk: bool
) -> list[Figure]:
    """One event loop for everything (the app database's engine belongs to it). A dataset
    whose site is already in `folder` (`--data-dir`, an earlier run) is measured as it is."""
    figures: list[Figure] = []
    with redis_server(folder / "redis") as redis_url:
        settings = Settings(
            _env_file=None, URSA_DATA_DIR=folder, REDIS_URL=redis_url, LOG_LEVEL="WARNING"
        ).with_secrets()
        migrate_app_db(settings)
        gateway = TimedClickHouse(settings.clickhouse_dsn)
        schema.migrate(gateway)
        services = Services(settings, gateway=gateway)
        existing = await _existing_sites(services)
        missing = [dataset.domain for dataset in datasets if dataset.domain not in existing]
        added = dict(zip(missing, await _add_sites(services, missing), strict=True))
        for number, dataset in enumerate(datasets):
            if dataset.domain not in added:
                say(f"  {dataset.label}: the data of {folder} as it is")
                continue
            site_id = added[dataset.domain]
            started = time.perf_counter()
            written = generate(
                gateway,
                site_id,
                days=dataset.days,
                events=dataset.events,
                seed=number + 1,
                hostname=dataset.domain,
            )
            seconds = time.perf_counter() - started
            emit(
                figures,
                Figure(
                    "demo",
                    f"demo-data generate+insert, {dataset.label}",
                    written / seconds,
                    "events/s",
                    note=f"{written:,} events over {dataset.days} days in {seconds:.1f} s "
                    "(app.cli.demo.generate into chDB)",
                ),
            )
        if cards:
            waited = _wait_for_merges(gateway)
            say(
                f"\n(c) dashboard: all {len(CARDS)} cards and every tab via the HTTP card endpoint,"
                f" the Stats API and the realtime header, over each dataset's whole period;"
                f" {rounds.cards} rounds (every other tab {rounds.tabs}) after a warm-up"
                f" (background merges of the load settled"
                f" after {waited:.0f} s)"
            )
            for dataset in datasets:
                say(f"  {dataset.label} ({dataset.days} days)")
                figures += await _measure_dataset(services, gateway, dataset, rounds)
        if on_disk:
            say("\n(d) bytes on disk: events, performance and rollups, after OPTIMIZE FINAL")
            _bytes_on_disk(gateway, figures)
        if cards and on_disk:
            _wait_for_merges(gateway)
            for dataset in datasets:
                figures += await _time_unfiltered_again(services, gateway, dataset, rounds.cards)
        await services.aclose()
        gateway.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--datasets",
        default="10000000:30d,10000000:12mo",
        help="comma-separated EVENTS:PERIOD, each a site with EVENTS demo events over PERIOD",
    )
    parser.add_argument("--rounds", type=int, default=20, help="rounds of all cards")
    parser.add_argument(
        "--tab-rounds", type=int, help="rounds of each other tab (default: a quarter, >= 3)"
    )
    parser.add_argument("--no-cards", action="store_true")
    parser.add_argument("--no-bytes", action="store_true")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the data here and reuse it: a dataset already in it is not generated again",
    )
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    today = dt.datetime.now(dt.UTC)
    datasets = [Dataset.parse(item.strip(), today) for item in args.datasets.split(",")]
    rounds = Rounds(args.rounds, args.tab_rounds or max(3, args.rounds // 4))
    figures = measure(
        datasets, rounds, cards=not args.no_cards, on_disk=not args.no_bytes, data_dir=args.data_dir
    )
    write_figures(args.json_out, figures)


if __name__ == "__main__":
    main()
