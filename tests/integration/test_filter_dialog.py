"""The filter dialog: a filter added by hand, and suggestions of the values seen."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from app.sites.goals import add_goal
from app.sites.registry import get_site
from tests.conftest import logged_in, new_user
from tests.integration.helpers import BROWSER_UA, post_event

pytestmark = pytest.mark.db
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def test_a_filter_added_by_hand_joins_the_views_filters(owner_client, site_domain):
    view = quote("?period=7d&f=page:is:/a")
    response = await owner_client.get(
        f"/{site_domain}/filter?view={view}&dimension=source&operator=is_not&value=Google|Bing"
    )
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/{site_domain}?period=7d&f=page%3Ais%3A%2Fa&f=source%3Ais_not%3AGoogle%7CBing"
    )
    same = await owner_client.get(
        f"/{site_domain}/filter?view={view}&dimension=page&operator=is&value=/b"
    )
    assert same.headers["location"].endswith("f=page%3Ais%3A%2Fa%7C%2Fb")  # alternatives


@pytest.mark.parametrize(
    "query",
    [
        "dimension=nope&operator=is&value=x",
        "dimension=page&operator=like&value=x",
        "dimension=page&operator=matches&value=(%3F%3Dx)",
        "dimension=page&operator=is&value=x&view=%3Fperiod%3D1y",
    ],
)
async def test_a_bad_filter_is_a_400(owner_client, site_domain, query):
    assert (await owner_client.get(f"/{site_domain}/filter?{query}")).status_code == 400


async def test_suggestions_are_the_values_seen(client, owner_client, services, site_domain):
    for path, agent in (("/pricing", BROWSER_UA), ("/privacy", OTHER_UA), ("/about", BROWSER_UA)):
        body = {"n": "pageview", "u": f"https://{site_domain}{path}", "d": site_domain}
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    services.flusher.drain()
    found = await owner_client.get(
        f"/{site_domain}/suggestions?view={quote('?period=today')}&dimension=page&value=PRI"
    )
    assert found.status_code == 200
    assert (
        found.text.strip() == '<option value="/pricing"></option><option value="/privacy"></option>'
    )
    await add_goal(
        services.sessions, await get_site(services.sessions, site_domain), "event", "Signup"
    )
    goals = await owner_client.get(f"/{site_domain}/suggestions?dimension=goal&value=sign")
    assert goals.text.strip() == '<option value="Signup"></option>'


async def test_another_tenant_gets_neither(services, site_domain):
    async with logged_in(services, await new_user(services)) as stranger:
        assert (await stranger.get(f"/{site_domain}/suggestions")).status_code == 404
        added = await stranger.get(f"/{site_domain}/filter?dimension=page&value=/x")
        assert added.status_code == 404
