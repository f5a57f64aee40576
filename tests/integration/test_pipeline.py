"""The ingest pipeline step by step, on real Redis and the real app database."""

from __future__ import annotations

import datetime as dt

import pytest

from app.analytics.buffer.stream import FIELD, decoder
from app.analytics.ingest.payload import parse_event
from app.analytics.ingest.pipeline import Drop, Ingest
from app.analytics.ingest.visitor import Salts
from tests.integration.helpers import BROWSER_UA

pytestmark = pytest.mark.db
NOW = dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC)
IP = "81.2.69.160"


def _ingest(domain: str, user_agent: str = BROWSER_UA) -> Ingest:
    body = f'{{"n":"pageview","u":"https://{domain}/x?utm_source=a","d":"{domain}"}}'
    return Ingest(event=parse_event(body.encode()), user_agent=user_agent, ip=IP, received=NOW)


def test_steps_are_in_the_documented_order(services):
    names = [step.__name__ for step in services.pipeline.steps]
    assert names == [
        "find_sites",
        "check_hostnames",
        "filter_bots",
        "enforce_caps",
        "check_capacity",
        "hash_visitor",
        "locate",
        "discard_ip",
        "append_to_buffer",
    ]


async def test_each_step(services, site_domain):
    pipeline = services.pipeline
    ingest = _ingest(site_domain)
    assert await pipeline.find_sites(ingest) is None
    [site] = ingest.sites
    assert pipeline.filter_bots(ingest) is None
    assert pipeline.enforce_caps(ingest) is None
    assert await pipeline.hash_visitor(ingest) is None
    today_id, yesterday_id = ingest.visitor_ids[site.id]
    assert today_id != yesterday_id
    assert pipeline.locate(ingest) is None
    assert ingest.location.country_code == "GB"
    assert pipeline.discard_ip(ingest) is None
    assert ingest.ip is None
    before = await services.redis.xlen(services.settings.BUFFER_STREAM)
    assert await pipeline.append_to_buffer(ingest) is None
    [(_, fields)] = await services.redis.xrevrange(services.settings.BUFFER_STREAM, count=1)
    assert await services.redis.xlen(services.settings.BUFFER_STREAM) == before + 1
    assert IP.encode() not in fields[FIELD]  # the raw IP never reaches the buffer
    buffered = decoder.decode(fields[FIELD])
    assert (buffered.site_id, buffered.visitor_id, buffered.query) == (
        site.id,
        today_id,
        "utm_source=a",
    )
    assert buffered.country_code == "GB"
    assert buffered.event_id > 0


async def test_drops_are_counted_by_reason(services, site_domain):
    pipeline = services.pipeline
    assert await pipeline.run(_ingest("unknown.example")) is Drop.UNKNOWN_SITE
    assert await pipeline.run(_ingest(site_domain, user_agent="curl/8.0")) is Drop.BOT
    assert pipeline.dropped[Drop.UNKNOWN_SITE] >= 1
    assert pipeline.dropped[Drop.BOT] >= 1


async def test_salts_rotate_daily_and_keep_yesterday(services):
    salts = Salts(services.redis, "hash-key")
    today, yesterday = await salts.keys_for(NOW)
    tomorrow_today, tomorrow_yesterday = await salts.keys_for(NOW + dt.timedelta(minutes=2))
    assert tomorrow_yesterday == today  # a visit across midnight can be joined up
    assert tomorrow_today not in (today, yesterday)
    again = Salts(services.redis, "hash-key")  # another web process shares the salt
    assert await again.keys_for(NOW) == (today, yesterday)
    other_key = Salts(services.redis, "another-installation")
    assert (await other_key.keys_for(NOW))[0] != today
