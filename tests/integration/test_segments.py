"""Segments: a dashboard's filters saved under a name, for every member of the site."""

from __future__ import annotations

from typing import Any

import pytest

from app.models import Role, User
from app.services import Services
from app.sites.registry import get_site, update_site
from tests.conftest import csrf_token, join, logged_in, new_user
from tests.integration.org_helpers import own_organization, set_plan

pytestmark = pytest.mark.db
FILTERED = "?period=7d&f=page%3Ais%3A%2Fpricing&f=source%3Ais%3AGoogle%7CBing"


@pytest.fixture(autouse=True)
async def _on_basic(services: Services, owner: User) -> None:
    """Segments come with Basic: the owner's organization is on it."""
    await set_plan(services, await own_organization(services, owner), "basic")


async def _post(http: Any, domain: str, path: str, **form: str) -> Any:
    token = await csrf_token(http, f"/{domain}")
    return await http.post(f"/{domain}/segments{path}", data={"csrf_token": token, **form})


async def test_a_segment_is_saved_offered_and_deleted(owner_client, services, site_domain):
    page = await owner_client.get(f"/{site_domain}{FILTERED}", headers={"Accept": "text/html"})
    assert "Save segment" in page.text

    saved = await _post(owner_client, site_domain, "", name="  Paid   search ", view=FILTERED)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/{site_domain}{FILTERED}"
    site = await get_site(services.sessions, site_domain)
    assert site.segments == [
        {"name": "Paid search", "filters": ["page:is:/pricing", "source:is:Google|Bing"]}
    ]

    plain = await owner_client.get(f"/{site_domain}?period=30d", headers={"Accept": "text/html"})
    link = "?period=30d&amp;f=page%3Ais%3A%2Fpricing&amp;f=source%3Ais%3AGoogle%7CBing"
    assert f'<a role="menuitem" href="/{site_domain}{link}">Paid search</a>' in plain.text
    assert "Save segment" not in plain.text  # nothing to save without filters

    deleted = await _post(
        owner_client, site_domain, "/delete", name="Paid search", view="?period=30d"
    )
    assert deleted.status_code == 303
    assert (await get_site(services.sessions, site_domain)).segments == []


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "No filters", "view": "?period=7d"}, "filter the dashboard first"),
        ({"name": "", "view": FILTERED}, "1 to 80 characters"),
        ({"name": "x" * 81, "view": FILTERED}, "1 to 80 characters"),
        ({"name": "Bad", "view": "?f=nope:is:x"}, "unknown filter dimension"),
        ({"name": "Long", "view": "?f=" + "a" * 9000}, "too long"),
    ],
)
async def test_bad_segments_are_a_400_and_save_nothing(
    owner_client, services, site_domain, form, message
):
    response = await _post(owner_client, site_domain, "", **form)
    assert response.status_code == 400
    assert message in response.text
    assert (await get_site(services.sessions, site_domain)).segments == []


async def test_viewers_use_segments_but_cannot_change_them(owner_client, services, site_domain):
    site = await get_site(services.sessions, site_domain)
    stale = {"name": "Stale", "filters": ["gone:is:x"]}  # a dimension of an older release
    await update_site(
        services.sessions,
        site,
        segments=[{"name": "Pricing", "filters": ["page:is:/pricing"]}, stale],
    )
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        page = await http.get(f"/{site_domain}{FILTERED}", headers={"Accept": "text/html"})
        assert ">Pricing</a>" in page.text
        assert ">Stale</a>" not in page.text
        assert "Save segment" not in page.text
        assert "Delete the segment" not in page.text
        refused = await _post(http, site_domain, "", name="Mine", view=FILTERED)
        assert refused.status_code in (403, 404)
        refused = await _post(http, site_domain, "/delete", name="Pricing", view="")
        assert refused.status_code in (403, 404)
    assert len((await get_site(services.sessions, site_domain)).segments) == 2
