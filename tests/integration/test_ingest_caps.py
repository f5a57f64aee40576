"""Ingest abuse caps: past them an event is answered 202 and dropped as `rate`, never 429."""

from __future__ import annotations

import pytest

from app.analytics.ingest.pipeline import DROPPED_BY_REASON, Drop
from app.services import Services
from tests.conftest import make_client
from tests.integration.helpers import post_event

pytestmark = pytest.mark.db


@pytest.fixture
async def capped(settings, clickhouse):
    capped_settings = settings.model_copy(
        update={"INGEST_CLIENT_EVENTS_PER_MINUTE": 3, "INGEST_SITE_EVENTS_PER_MINUTE": 5}
    )
    services = Services(capped_settings, gateway=clickhouse)
    yield services
    await services.aclose()


async def test_a_client_past_its_cap_is_dropped_with_202(capped, site_domain):
    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    before = DROPPED_BY_REASON[Drop.RATE]._value.get()
    async with (
        make_client(capped, peer="203.0.113.10") as one,
        make_client(capped, peer="203.0.113.11") as other,
    ):
        answers = [await post_event(one, event) for _ in range(4)]
        assert [a.status_code for a in answers] == [202] * 4
        assert [a.headers.get("x-ursa-dropped") for a in answers] == [None, None, None, "rate"]
        # Another client still gets through, until the site's own cap (5) is reached.
        answers = [await post_event(other, event) for _ in range(3)]
    assert [a.headers.get("x-ursa-dropped") for a in answers] == [None, None, "rate"]
    assert capped.pipeline.dropped[Drop.RATE] == 2
    assert DROPPED_BY_REASON[Drop.RATE]._value.get() == before + 2
