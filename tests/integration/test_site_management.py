"""Adding sites, their settings page, live install status, transfer and deletion, over HTTP."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlmodel import select

from app.main import APP_DIR
from app.models import Membership, Organization, Role, SharedLink, Site, User
from app.services import Services
from app.sites.registry import get_site
from app.tasks.deletion_jobs import delete_site_data
from app.web.static_assets import static_url
from tests.conftest import csrf_token, join, logged_in, new_user
from tests.integration.helpers import post_event, stored
from tests.integration.jobs import run_jobs

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}


def _domain() -> str:
    return f"site-{secrets.token_hex(6)}.example"


async def _post_form(
    client: httpx.AsyncClient, page: str, path: str, **form: Any
) -> httpx.Response:
    """Submit a form of `page` to `path` with its CSRF token, as a browser would."""
    token = await csrf_token(client, page)
    return await client.post(path, data={"csrf_token": token, **form}, headers=HTML)


async def _add(client: httpx.AsyncClient, domain: str, **form: Any) -> httpx.Response:
    return await _post_form(client, "/sites/new", "/sites", domain=domain, **form)


async def _settings_form(
    client: httpx.AsyncClient, domain: str, action: str, **form: Any
) -> httpx.Response:
    return await _post_form(client, f"/{domain}/settings", f"/{domain}/{action}", **form)


async def _organization_of(services: Services, user: User, role: Role = Role.OWNER) -> int:
    """A new organization in which `user` has `role`."""
    async with services.sessions() as session:
        organization = Organization(name=f"Team {secrets.token_hex(3)}")
        session.add(organization)
        await session.flush()
        assert organization.id is not None
        assert user.id is not None
        session.add(Membership(user_id=user.id, organization_id=organization.id, role=role))
        await session.commit()
        return organization.id


async def _own_organization(services: Services, user: User) -> int:
    async with services.sessions() as session:
        query = select(Membership).where(Membership.user_id == user.id)
        return (await session.exec(query)).first().organization_id  # type: ignore[union-attr]


# --- adding a site ---------------------------------------------------------------------------


async def test_new_site_form_lists_timezones_and_hides_a_single_organization(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        page = await http.get("/sites/new")
    assert page.status_code == 200
    assert '<option value="UTC" selected>UTC</option>' in page.text
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in page.text
    organization = await _own_organization(services, user)
    assert f'<input type="hidden" name="organization" value="{organization}">' in page.text
    assert '<select name="organization">' not in page.text


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (" https://WWW.Example-{token}.COM/path ", "example-{token}.com"),
        ("bücher.example", "xn--bcher-kva.example"),  # the database is new for each test run
    ],
)
async def test_adding_a_site_normalises_the_domain(services, typed, expected):
    token = secrets.token_hex(4)
    typed, expected = typed.format(token=token), expected.format(token=token)
    user = await new_user(services)
    async with logged_in(services, user) as http:
        response = await _add(http, typed, timezone="Europe/Paris")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/{expected}/settings"
    site = await get_site(services.sessions, expected)
    organization = await _own_organization(services, user)
    assert (site.timezone, site.organization_id) == ("Europe/Paris", organization)


async def test_a_registered_domain_is_refused_with_the_form_again(services):
    domain = _domain()
    first, second = await new_user(services), await new_user(services)
    async with logged_in(services, first) as http:
        assert (await _add(http, domain)).status_code == 303
    async with logged_in(services, second) as http:
        response = await _add(http, f"https://www.{domain}/", timezone="Asia/Tokyo")
    assert response.status_code == 409
    assert f"{domain} is already registered" in response.text
    assert '<form method="post" action="/sites"' in response.text
    assert '<option value="Asia/Tokyo" selected>' in response.text  # the choice is kept


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"domain": "not a domain"}, "is not a valid domain name"),
        ({"domain": "localhost"}, "is not a valid domain name"),
        ({"domain": _domain(), "timezone": "Mars/Olympus"}, "is not a known time zone"),
    ],
)
async def test_bad_domain_or_timezone_is_a_400_and_adds_nothing(services, form, message):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        response = await _add(http, **form)
    assert response.status_code == 400
    assert message in response.text
    async with services.sessions() as session:
        assert (
            await session.exec(select(Site).where(Site.domain == form["domain"]))
        ).first() is None


async def test_a_viewer_everywhere_cannot_add_sites(services, owner, site_domain):
    viewer = await new_user(services)
    async with services.sessions() as session:  # a viewer of the owner's org, and nothing else
        mine = (await session.exec(select(Membership).where(Membership.user_id == viewer.id))).one()
        await session.delete(mine)
        await session.commit()
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        page = await http.get("/sites/new", headers=HTML)
        token = await csrf_token(http, "/")
        response = await http.post(
            "/sites", data={"csrf_token": token, "domain": _domain()}, headers=HTML
        )
    assert page.status_code == response.status_code == 403
    assert "owner or admin role" in response.text


async def test_a_site_cannot_be_added_to_someone_elses_organization(services, owner):
    stranger = await new_user(services)
    their_org = await _own_organization(services, owner)
    domain = _domain()
    async with logged_in(services, stranger) as http:
        response = await _add(http, domain, organization=str(their_org))
    assert response.status_code == 404
    async with services.sessions() as session:
        assert (await session.exec(select(Site).where(Site.domain == domain))).first() is None


# --- settings, snippet and install status ----------------------------------------------------


async def test_settings_show_the_escaped_snippet_and_a_polling_status(
    services, owner_client, site_domain
):
    page = await owner_client.get(f"/{site_domain}/settings")
    assert page.status_code == 200
    base = services.settings.BASE_URL
    snippet = (
        f"&lt;script defer data-domain=&#34;{site_domain}&#34; "
        f"src=&#34;{base}/js/script.js&#34;&gt;&lt;/script&gt;"
    )
    assert f'<code id="sites-snippet-code">{snippet}</code>' in page.text
    assert f'<script src="{static_url("js/sites.js")}" defer></script>' in page.text
    assert f'hx-get="/{site_domain}/install-status" hx-trigger="load, every 3s"' in page.text
    assert "hostname changes reach event collection at once" in page.text  # no cache in tests
    assert "navigator.clipboard" in (APP_DIR / "static/js/sites.js").read_text()
    # what the script sends, engagement's rule among it
    assert "<code>data-file-downloads</code>" in page.text
    assert "they never create a visit or a page view and never turn a bounce" in page.text


async def test_settings_say_why_a_headless_browser_is_not_counted(owner_client, site_domain):
    """A site owner testing with Playwright & co. learns the opt-in, instead of waiting."""
    page = (await owner_client.get(f"/{site_domain}/settings")).text
    note = re.search(r'<p class="muted small" id="sites-automated-note">(.*?)</p>', page, re.S)
    assert note is not None
    text = " ".join(note.group(1).split())
    assert "automated browsers" in text
    assert "<code>navigator.webdriver</code>) are not counted" in text
    assert "set <code>window.__ursa = true</code> on the page before the script" in text
    assert "<code>HeadlessChrome</code> counts as a bot" in text


async def test_install_status_flips_to_receiving_after_the_first_event(
    services, client, owner_client, site_domain
):
    waiting = await owner_client.get(f"/{site_domain}/install-status")
    assert waiting.status_code == 200
    assert "Waiting for the first event…" in waiting.text
    assert 'hx-trigger="every 3s" hx-swap="outerHTML"' in waiting.text

    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    assert (await post_event(client, event)).status_code == 202
    services.flusher.drain()

    receiving = await owner_client.get(f"/{site_domain}/install-status")
    assert "Receiving events ✓" in receiving.text
    assert "hx-trigger" not in receiving.text
    assert "hx-get" not in receiving.text


async def test_viewers_get_403_on_settings_but_may_poll_the_status(services, site_domain, owner):
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        settings = await http.get(f"/{site_domain}/settings", headers=HTML)
        status = await http.get(f"/{site_domain}/install-status")
        token = await csrf_token(http, "/")
        change = await http.post(
            f"/{site_domain}/settings/timezone",
            data={"csrf_token": token, "timezone": "Asia/Tokyo"},
            headers=HTML,
        )
    assert (settings.status_code, status.status_code, change.status_code) == (403, 200, 403)
    assert (await get_site(services.sessions, site_domain)).timezone == "UTC"


@pytest.mark.parametrize("path", ["settings", "install-status"])
async def test_non_members_get_404(services, site_domain, owner, path):
    stranger = await new_user(services)
    async with logged_in(services, stranger) as http:
        response = await http.get(f"/{site_domain}/{path}", headers=HTML)
    assert response.status_code == 404


async def test_admins_change_the_timezone_and_a_bad_one_is_a_400(services, site_domain, owner):
    admin = await new_user(services)
    await join(services, admin, site_domain, Role.ADMIN)
    async with logged_in(services, admin) as http:
        saved = await _settings_form(http, site_domain, "settings/timezone", timezone="Asia/Tokyo")
        page = await http.get(saved.headers["location"])
        bad = await _settings_form(http, site_domain, "settings/timezone", timezone="Nowhere/X")
    assert saved.status_code == 303
    assert "Time zone saved." in page.text
    assert '<option value="Asia/Tokyo" selected>' in page.text
    assert bad.status_code == 400
    assert "&#39;Nowhere/X&#39; is not a known time zone" in bad.text
    assert "Only an owner of the organization can delete this site." in page.text
    assert (await get_site(services.sessions, site_domain)).timezone == "Asia/Tokyo"


async def test_allowed_hostnames_are_replaced_and_a_bad_line_is_named(
    services, client, owner_client, site_domain
):
    lines = f"Shop.{site_domain}\n\n  https://www.{site_domain}/  \n*.blog.{site_domain}\n"
    saved = await _settings_form(owner_client, site_domain, "settings/hostnames", hostnames=lines)
    assert saved.status_code == 303
    expected = sorted([site_domain, f"shop.{site_domain}", f"*.blog.{site_domain}"])
    assert (await get_site(services.sessions, site_domain)).allowed_hostnames == expected
    page = await owner_client.get(saved.headers["location"])
    assert "\n".join(expected) in page.text

    bad = f"ok.{site_domain}\nnot a host\n"
    refused = await _settings_form(owner_client, site_domain, "settings/hostnames", hostnames=bad)
    assert refused.status_code == 400
    assert "Line 2: &#39;not a host&#39; is not a valid hostname" in refused.text
    assert f"ok.{site_domain}\nnot a host" in refused.text  # the typed text is kept
    assert (await get_site(services.sessions, site_domain)).allowed_hostnames == expected

    many = "\n".join(f"h{n}.{site_domain}" for n in range(101))
    too_many = await _settings_form(owner_client, site_domain, "settings/hostnames", hostnames=many)
    assert too_many.status_code == 400
    assert "At most 100 hostnames" in too_many.text

    other = {"n": "pageview", "u": "https://elsewhere.example/", "d": site_domain}
    dropped = await post_event(client, other)
    assert dropped.headers.get("x-ursa-dropped") == "hostname"  # ingest sees the new list


# --- transfer --------------------------------------------------------------------------------


async def test_transfer_between_two_organizations_of_the_same_owner(
    services, owner, owner_client, site_domain
):
    second = await _organization_of(services, owner, Role.ADMIN)
    page = await owner_client.get(f"/{site_domain}/settings")
    assert f'<option value="{second}">' in page.text
    moved = await _settings_form(owner_client, site_domain, "transfer", organization=str(second))
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/{site_domain}/settings?saved=transfer"
    assert (await get_site(services.sessions, site_domain)).organization_id == second
    assert (await owner_client.get(f"/{site_domain}", headers=HTML)).status_code == 200


async def test_transfer_to_someone_elses_organization_is_a_404(
    services, owner, owner_client, site_domain
):
    before = await _own_organization(services, owner)
    stranger = await new_user(services)
    theirs = await _own_organization(services, stranger)
    refused = await _settings_form(owner_client, site_domain, "transfer", organization=str(theirs))
    assert refused.status_code == 404
    assert (await get_site(services.sessions, site_domain)).organization_id == before


async def test_transfer_needs_admin_in_the_target_organization(
    services, owner, owner_client, site_domain
):
    viewing = await _organization_of(services, owner, Role.VIEWER)
    refused = await _settings_form(owner_client, site_domain, "transfer", organization=str(viewing))
    assert refused.status_code == 403
    unchosen = await _settings_form(owner_client, site_domain, "transfer")
    assert unchosen.status_code == 400
    assert "Choose the organization to move the site to." in unchosen.text
    assert (await get_site(services.sessions, site_domain)).organization_id != viewing


# --- deletion --------------------------------------------------------------------------------


def _queued_site_deletions() -> list[tuple[Any, ...]]:
    broker = delete_site_data.broker
    assert isinstance(broker, StubBroker)
    queue = broker.queues.get(delete_site_data.queue_name)
    return [] if queue is None else [tuple(Message.decode(raw).args) for raw in list(queue.queue)]


async def test_deleting_needs_the_typed_domain_then_removes_site_links_and_data(
    services, client, owner, owner_client, site_domain
):
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    async with services.sessions() as session:
        session.add(SharedLink(site_id=site.id, slug=secrets.token_hex(16)))
        await session.commit()
    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    assert (await post_event(client, event)).status_code == 202
    services.flusher.drain()
    assert stored(services.clickhouse, site.id)

    wrong = await _settings_form(owner_client, site_domain, "delete", confirm="example.com")
    assert wrong.status_code == 400
    assert f"Type the domain {site_domain} exactly" in wrong.text
    assert (site.id,) not in _queued_site_deletions()
    assert (await get_site(services.sessions, site_domain)).id == site.id

    done = await _settings_form(owner_client, site_domain, "delete", confirm=f" {site_domain} ")
    assert (done.status_code, done.headers["location"]) == (303, "/")
    assert (site.id,) in _queued_site_deletions()
    async with services.sessions() as session:
        assert await session.get(Site, site.id) is None
        links = select(SharedLink).where(SharedLink.site_id == site.id)
        assert (await session.exec(links)).all() == []
    assert (await owner_client.get(f"/{site_domain}/settings", headers=HTML)).status_code == 404

    run_jobs(services)
    assert stored(services.clickhouse, site.id) == []


async def test_only_owners_may_delete(services, owner, site_domain):
    admin = await new_user(services)
    await join(services, admin, site_domain, Role.ADMIN)
    async with logged_in(services, admin) as http:
        refused = await _settings_form(http, site_domain, "delete", confirm=site_domain)
    assert refused.status_code == 403
    assert (await get_site(services.sessions, site_domain)).domain == site_domain


async def test_site_pages_need_a_login(services, client, site_domain):
    for path in ("/sites/new", f"/{site_domain}/settings"):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 302
        assert response.headers["location"].startswith(f"/login?next={path}")
    polled = await client.get(f"/{site_domain}/install-status", headers={"HX-Request": "true"})
    assert polled.status_code == 401  # htmx is sent to the login page instead


@pytest.mark.parametrize(("organization", "status"), [("abc", 400), ("-1", 404), ("99999999", 404)])
async def test_a_malformed_or_unknown_organization_adds_nothing(
    services, owner_client, organization, status
):
    domain = _domain()
    response = await _add(owner_client, domain, organization=organization)
    assert response.status_code == status
    async with services.sessions() as session:
        assert (await session.exec(select(Site).where(Site.domain == domain))).first() is None
