"""The header's current visitors: who had an event in the last five minutes, refreshed live."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.analytics.queries import stats
from tests.integration.helpers import BROWSER_UA, post_event
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def test_current_visitors_are_those_of_the_last_five_minutes(services, site_domain):
    site_id = await site_id_of(services, site_domain)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    visits = [(1, 1), (2, 4), (2, 4.5), (3, 6), (4, -0.5)]  # (visitor, minutes ago)
    columns = ["site_id", "event_id", "timestamp", "name", "visitor_id", "pathname"]
    data = [
        [site_id] * len(visits),
        [site_id << 32 | index for index in range(len(visits))],
        [int((now - dt.timedelta(minutes=ago)).timestamp()) for _, ago in visits],
        ["pageview"] * len(visits),
        [visitor for visitor, _ in visits],
        ["/"] * len(visits),
    ]
    services.clickhouse.insert("events", columns, data, token=f"realtime:{uuid.uuid4()}")
    # visitor 3 left six minutes ago; visitor 4's clock runs ahead: still "now"
    assert stats.current_visitors(services.clickhouse, site_id, now) == 3
    assert stats.current_visitors(services.clickhouse, site_id, now + dt.timedelta(hours=1)) == 0
    with pytest.raises(ValueError, match="needs a site"):
        stats.current_visitors(services.clickhouse, 0, now)


async def test_the_header_count_reloads_itself_and_links_to_the_realtime_view(
    client, owner_client, services, site_domain
):
    page = await owner_client.get(f"/{site_domain}?period=7d", headers={"Accept": "text/html"})
    assert (
        f'hx-get="/{site_domain}/cards/current-visitors?period=7d" '
        'hx-trigger="load, every 15s"' in page.text
    )
    empty = await owner_client.get(f"/{site_domain}/cards/current-visitors?period=7d")
    assert "0 current visitors" in empty.text

    for agent in (BROWSER_UA, OTHER_UA):
        body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    services.flusher.drain()
    card = await owner_client.get(
        f"/{site_domain}/cards/current-visitors?period=7d&f=page:is:/elsewhere"
    )
    assert card.status_code == 200
    assert "2 current visitors" in card.text  # filters aside: everyone on the site now
    assert f'href="/{site_domain}?period=realtime&amp;f=page%3Ais%3A%2Felsewhere"' in card.text
