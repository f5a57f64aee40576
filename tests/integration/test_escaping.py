"""What users type (organization names, shared-link labels, emails of invitees) and what
visitors send (page paths, UTM values, props) is text on every page that shows it."""

from __future__ import annotations

import html5lib
import pytest
from sqlmodel import select

from app.dashboard.cards import CARDS
from app.models import Membership, Organization, Site
from app.sites.sharing import create_link
from tests.integration.helpers import post_event

pytestmark = pytest.mark.db
PAYLOAD = (
    '"><script id="xss">alert(1)</script><img src=x onerror=alert(1) hx-get="/x" hx-on:click="x">'
)


def planted(markup: str) -> list[str]:
    """Elements or attributes that could only have come from the payload."""
    found = []
    for node in html5lib.parse(markup, namespaceHTMLElements=False).iter():
        if (node.tag, node.get("id")) == ("script", "xss") or (node.tag, node.get("src")) == (
            "img",
            "x",
        ):
            found.append(node.tag)
        found += [name for name in node.attrib if name.startswith(("on", "hx-on"))]
        if node.get("hx-get") == "/x":
            found.append("hx-get")
    return found


def test_the_check_sees_a_planted_payload():
    assert planted(f"<p>{PAYLOAD}</p>") == ["script", "img", "onerror", "hx-on:click", "hx-get"]


async def test_typed_names_and_tracked_values_stay_text(
    services, client, owner, owner_client, site_domain
):
    async with services.sessions() as session:
        membership = (
            await session.exec(select(Membership).where(Membership.user_id == owner.id))
        ).one()
        organization = await session.get(Organization, membership.organization_id)
        assert organization is not None
        organization.name = PAYLOAD[:100]
        session.add(organization)
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
        await session.commit()
    await create_link(services, site, owner, PAYLOAD[:100])
    event = {
        "n": PAYLOAD[:100],
        "u": f"https://{site_domain}/{PAYLOAD}?utm_source={PAYLOAD}&utm_campaign={PAYLOAD}",
        "d": site_domain,
        "r": f"https://elsewhere.example/{PAYLOAD}",
        "p": {"k": PAYLOAD},
    }
    assert (await post_event(client, event)).status_code == 202
    assert (await post_event(client, {**event, "n": "pageview"})).status_code == 202
    services.flusher.drain()

    pages = [
        "/",
        "/orgs",
        f"/orgs/{organization.id}",
        f"/{site_domain}?period=today",
        f"/{site_domain}/settings",
        f"/{site_domain}/sharing",
        *(f"/{site_domain}/cards/{name}?period=today" for name in CARDS),
    ]
    for path in pages:
        response = await owner_client.get(path)
        assert response.status_code == 200, path
        assert planted(response.text) == [], path
    shown = (await owner_client.get(f"/orgs/{organization.id}")).text
    assert "&lt;script" in shown  # the name is there, as text
