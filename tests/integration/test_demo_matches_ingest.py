"""Demo data is what the ingest makes of the same visits: visitor ids and sessions, event by event.

The demo's events are sent through the real pipeline (the demo's daily keys standing in for the
salts in Redis, each event appended at its own time) and flushed into chDB; the stored rows must
carry the visitor ids, sessions and session totals the demo generator wrote.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import redis.asyncio as aioredis

from app.analytics.buffer.enrich import EVENT_COLUMNS
from app.analytics.buffer.flush import Flusher
from app.analytics.buffer.stream import FIELD, BufferedEvent, EventBuffer, encoder
from app.analytics.ingest.ids import id_millis
from app.analytics.ingest.payload import IncomingEvent
from app.analytics.ingest.pipeline import Ingest, Pipeline
from app.analytics.ingest.visitor import Salts
from app.cli.demo import Traffic
from app.sites.registry import get_site
from tests.integration.helpers import stored

pytestmark = pytest.mark.db
NOW = dt.datetime(2025, 11, 20, 15, 30, tzinfo=dt.UTC)
# Every column but the country, which the demo draws and the ingest locates (from addresses of
# the documentation range: none).
COMPARED = tuple(name for name in EVENT_COLUMNS if name != "country_code")
UTM_COLUMNS = tuple(name for name in EVENT_COLUMNS if name.startswith("utm_"))


class DemoSalts(Salts):
    """The demo's keys of each day, where the ingest has the salts in Redis."""

    def __init__(self, redis: aioredis.Redis, traffic: Traffic) -> None:
        super().__init__(redis, "")
        self.traffic = traffic

    async def keys_for(self, now: dt.datetime) -> tuple[bytes, bytes]:
        return self.traffic.keys_for(now)


class AtEventTime(EventBuffer):
    """Appends each event at the time of its id: the stream id is an event's timestamp."""

    def __init__(self, redis: aioredis.Redis, stream: str) -> None:
        super().__init__(redis, stream)
        self.redis = redis
        self.appended = 0  # a sequence number keeps ids of one millisecond apart

    async def append(self, events: Sequence[BufferedEvent]) -> None:
        for event in events:
            self.appended += 1
            entry: dict[Any, Any] = {FIELD: encoder.encode(event)}
            stream_id = f"{id_millis(event.event_id)}-{self.appended}"
            await self.redis.xadd(self.stream, entry, id=stream_id)


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _sent(row: dict[str, Any], domain: str, sender: tuple[str, str], width: int) -> Ingest:
    """The request a demo event stands for: the entry carries the visit's UTM values, every
    event the person's window width."""
    utm = {name: row[name] for name in UTM_COLUMNS if row[name] and row["session_start"]}
    url = f"https://{domain}{row['pathname']}" + (f"?{urlencode(utm)}" if utm else "")
    event = IncomingEvent(
        name=row["name"],
        url=url,
        hostname=domain,
        pathname=row["pathname"],
        domains=[domain],
        referrer=row["referrer"],
        props=row["props"],
        revenue_amount=str(row["revenue"]) if row["revenue"] else "",
        revenue_currency=row["revenue_currency"],
        screen_width=width,
        event_id=row["event_id"],
    )
    received = dt.datetime.fromtimestamp(id_millis(row["event_id"]) / 1000, dt.UTC)
    ip, user_agent = sender
    return Ingest(event=event, user_agent=user_agent, ip=ip, received=received)


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """The columns both sides set, as plain values (ClickHouse answers naive UTC times)."""
    values = {name: row[name] for name in COMPARED}
    if isinstance(values["timestamp"], dt.datetime):
        values["timestamp"] = int(values["timestamp"].replace(tzinfo=dt.UTC).timestamp())
    values["revenue"] = Decimal(values["revenue"])
    return values


async def test_the_pipeline_stores_the_demo_visitors_and_sessions(services, site_domain):
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    traffic = Traffic(
        site.id, days=2, events=800, seed=5, now=NOW, hostname=site_domain, hashed_as=site.id
    )
    demo: list[dict[str, Any]] = []
    senders: list[tuple[str, str]] = []
    widths: list[int] = []
    for batch in traffic.batches():
        demo += _rows(batch.events)
        senders += batch.senders()
        widths += batch.frame.columns["screen_width"].tolist()
    stream = f"test-demo-{secrets.token_hex(4)}"
    pipeline = Pipeline(
        services.sites,
        DemoSalts(services.redis, traffic),
        services.locator,
        AtEventTime(services.redis, stream),
    )
    sent = sorted(zip(demo, senders, widths, strict=True), key=lambda s: s[0]["event_id"])
    for row, sender, width in sent:
        assert await pipeline.run(_sent(row, site_domain, sender, width)) is None
    stats = Flusher(services.sync_redis, services.clickhouse, stream).drain()
    assert stats.events == len(demo) == 800

    ingested = {row["event_id"]: _comparable(row) for row in stored(services.clickhouse, site.id)}
    assert [ingested[row["event_id"]] for row in demo] == [_comparable(row) for row in demo]
    sessions = {row["session_id"]: row["visitor_id"] for row in demo}
    assert len(set(sessions.values())) < len(sessions) < len(demo)  # returning visitors, too
