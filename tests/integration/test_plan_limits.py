"""Each route a plan gates: a reached limit or a missing feature is a 402 with the plan's name
and the upgrade link (a form error, a page, or JSON for the Stats API), and changes nothing."""

from __future__ import annotations

import datetime as dt
import secrets

import html5lib
import pytest
from sqlmodel import col, select

from app.accounts import api_keys
from app.models import Invitation, Role, Site, User
from app.models.columns import utcnow
from app.services import Services
from app.sites.registry import get_site, register_site
from tests.conftest import csrf_token, join, logged_in, make_client, new_user
from tests.integration.helpers import run_ursa
from tests.integration.org_helpers import (
    invitations_of,
    new_address,
    own_organization,
    set_plan,
    submit,
)

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}
FILTERED = "?period=7d&f=page%3Ais%3A%2Fpricing"
QUERY = {"metrics": ["visitors"], "date_range": ["2026-11-12", "2026-11-18"]}


def _domain() -> str:
    return f"more-{secrets.token_hex(6)}.example"


async def _sites_of(services: Services, org_id: int) -> list[str]:
    async with services.sessions() as session:
        query = select(Site.domain).where(Site.organization_id == org_id)
        return sorted((await session.exec(query)).all())


async def _fill_sites(services: Services, org_id: int, up_to: int) -> None:
    while len(await _sites_of(services, org_id)) < up_to:
        await register_site(services.sessions, _domain(), "UTC", org_id)


def _upgrade_links(html: str) -> list[str]:
    document = html5lib.parse(html, namespaceHTMLElements=False)
    return [a.get("href", "") for a in document.iter("a") if "upgrade" in (a.text or "")]


async def test_a_free_organization_adds_up_to_three_sites(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    await _fill_sites(services, org_id, 3)
    before = await _sites_of(services, org_id)
    refused = await submit(owner_client, "/sites", domain=_domain(), organization=str(org_id))
    assert refused.status_code == 402
    assert "The Free plan allows 3 sites per organization, and this one has 3." in refused.text
    assert _upgrade_links(refused.text) == [f"/orgs/{org_id}/billing"]
    assert '<form method="post" action="/sites"' in refused.text  # the form, shown again
    assert await _sites_of(services, org_id) == before

    await set_plan(services, org_id, "basic")
    added = await submit(owner_client, "/sites", domain=_domain(), organization=str(org_id))
    assert added.status_code == 303
    assert len(await _sites_of(services, org_id)) == 4


async def test_enterprise_site_limit_is_the_organizations_own(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    await set_plan(services, org_id, "enterprise", custom_max_sites=1)
    refused = await submit(owner_client, "/sites", domain=_domain(), organization=str(org_id))
    assert refused.status_code == 402
    assert "The Enterprise plan allows 1 site per organization" in refused.text
    await set_plan(services, org_id, "enterprise", custom_max_sites=None)  # Premium's 50
    assert (
        await submit(owner_client, "/sites", domain=_domain(), organization=str(org_id))
    ).status_code == 303


async def test_moving_a_site_into_a_full_organization_is_refused(
    services, owner, owner_client, site_domain
):
    created = await submit(owner_client, "/orgs", name="Full")
    full = int(created.headers["location"].removeprefix("/orgs/"))
    await _fill_sites(services, full, 3)
    moved = await submit(owner_client, f"/{site_domain}/transfer", organization=str(full))
    assert moved.status_code == 402
    assert moved.json() == {
        "error": "The Free plan allows 3 sites per organization, and this one has 3. "
        "Upgrade to add more.",
        "plan": "free",
        "upgrade_url": f"https://testserver/orgs/{full}/billing",
    }
    site = await get_site(services.sessions, site_domain)
    assert site.organization_id == await own_organization(services, owner)

    page = await owner_client.post(
        f"/{site_domain}/transfer",
        data={"organization": str(full), "csrf_token": await csrf_token(owner_client, "/orgs")},
        headers=HTML,
    )
    assert page.status_code == 402
    assert _upgrade_links(page.text) == [f"/orgs/{full}/billing"]


async def test_members_and_open_invitations_fill_the_member_limit(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    for _ in range(2):  # the owner and two invitees: Free's 3
        invited = await submit(owner_client, f"/orgs/{org_id}/invitations", email=new_address())
        assert invited.status_code == 303
    refused = await submit(owner_client, f"/orgs/{org_id}/invitations", email=new_address())
    assert refused.status_code == 402
    assert refused.json()["error"] == (
        "The Free plan allows 3 members per organization, and this one has 3. Upgrade to add more."
    )
    assert len(await invitations_of(services, org_id)) == 2

    # An expired invitation holds no slot; inviting the same address again replaces its own.
    async with services.sessions() as session:
        query = select(Invitation).where(Invitation.organization_id == org_id)
        first = (await session.exec(query.order_by(col(Invitation.id)))).first()
        assert first is not None
        again = first.email
        first.expires_at = utcnow() - dt.timedelta(minutes=1)
        session.add(first)
        await session.commit()
    assert (
        await submit(owner_client, f"/orgs/{org_id}/invitations", email=new_address())
    ).status_code == 303
    assert (
        await submit(owner_client, f"/orgs/{org_id}/invitations", email=again)
    ).status_code == 402  # its expired invitation is replaced, but the slots are full

    await set_plan(services, org_id, "basic")
    assert (
        await submit(owner_client, f"/orgs/{org_id}/invitations", email=again)
    ).status_code == 303


async def _api_key(services: Services, user: User) -> dict[str, str]:
    secret = (await api_keys.create_key(services.sessions, user, "plan tests"))[1]
    return {"Authorization": f"Bearer {secret}"}


async def test_the_stats_api_comes_with_premium(services, owner, site_domain):
    org_id = await own_organization(services, owner)
    headers = await _api_key(services, owner)
    v1 = f"/api/v1/stats/aggregate?site_id={site_domain}&period=7d"
    async with make_client(services) as http:
        for code in ("free", "basic"):
            await set_plan(services, org_id, code)
            v2 = await http.post(
                "/api/v2/query", json={"site_id": site_domain, **QUERY}, headers=headers
            )
            assert v2.status_code == 402
            plan = code.capitalize()
            assert v2.json() == {
                "error": f"The {plan} plan does not include Stats API. Upgrade to Premium or "
                "above.",
                "plan": code,
                "upgrade_url": f"http://testserver/orgs/{org_id}/billing",
            }
            assert (await http.get(v1, headers=headers)).status_code == 402
        await set_plan(services, org_id, "premium")
        v2 = await http.post(
            "/api/v2/query", json={"site_id": site_domain, **QUERY}, headers=headers
        )
        assert v2.status_code == 200
        assert (await http.get(v1, headers=headers)).status_code == 200
        await set_plan(services, org_id, "free")  # a cancelled subscription: refused again
        realtime = f"/api/v1/stats/realtime/visitors?site_id={site_domain}"
        assert (await http.get(realtime, headers=headers)).status_code == 402
        # A site the key may not read stays a 404, whatever the plan: nothing is revealed.
        other = await http.post(
            "/api/v2/query", json={"site_id": "nowhere.example", **QUERY}, headers=headers
        )
        assert other.status_code == 404


async def test_segments_come_with_basic(services, owner, owner_client, site_domain):
    org_id = await own_organization(services, owner)
    token = await csrf_token(owner_client, f"/{site_domain}")
    form = {"name": "Pricing", "view": FILTERED, "csrf_token": token}
    refused = await owner_client.post(f"/{site_domain}/segments", data=form, headers=HTML)
    assert refused.status_code == 402
    assert "The Free plan does not include Segments. Upgrade to Basic or above." in refused.text
    assert _upgrade_links(refused.text) == [f"/orgs/{org_id}/billing"]
    assert (await get_site(services.sessions, site_domain)).segments == []

    await set_plan(services, org_id, "basic")
    saved = await owner_client.post(f"/{site_domain}/segments", data=form)
    assert saved.status_code == 303
    assert [s["name"] for s in (await get_site(services.sessions, site_domain)).segments] == [
        "Pricing"
    ]


async def test_shared_links_come_with_basic(services, owner, owner_client, site_domain):
    org_id = await own_organization(services, owner)
    path = f"/{site_domain}/sharing/links"
    refused = await submit(owner_client, path, label="For the board")
    assert refused.status_code == 402
    assert refused.json()["plan"] == "free"
    await set_plan(services, org_id, "basic")
    assert (await submit(owner_client, path, label="For the board")).status_code == 303


async def test_a_viewer_still_gets_403_before_any_plan_question(services, owner, site_domain):
    """The role is checked first: a Viewer learns nothing about the plan."""
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        answer = await submit(http, f"/{site_domain}/segments", name="x", view=FILTERED)
    assert answer.status_code == 403


async def test_the_operator_adds_sites_beyond_the_plan(settings, services, owner):
    """`ursa sites add --owner` is the installation's operator, not the customer."""
    org_id = await own_organization(services, owner)
    await _fill_sites(services, org_id, 3)
    domain = _domain()
    result = await run_ursa(settings, "sites", "add", domain, "--owner", owner.email)
    assert result.exit_code == 0, result.output
    assert domain in await _sites_of(services, org_id)
    assert len(await _sites_of(services, org_id)) == 4
