"""Public dashboards and shared links: managing them, and the read-only views (cookieless, but
for the access cookie a protected link's password sets)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import html5lib
import httpx
import pytest
from sqlmodel import col, select

from app.dashboard.cards import CARDS
from app.models import Membership, Organization, Role, SharedLink, Site, User
from app.services import Services
from app.sites.registry import add_site
from app.sites.sharing import ACCESS_SECONDS, SHARE_PASSWORD_PER_IP, access_token, access_valid
from tests.conftest import csrf_token, join, logged_in, make_client, new_user, random_peer
from tests.integration.helpers import mark_deleted, post_event
from tests.integration.org_helpers import own_organization, set_plan

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}
LINK_PASSWORD = "a long shared secret"
MARKER = '"><script id="xss">alert(1)</script><img src=x onerror=alert(1) hx-get="/x">'
FRAMED_BY = re.compile(r"frame-ancestors ([^;]*)")


@pytest.fixture(autouse=True)
async def _on_basic(services: Services, owner: User) -> None:
    """Shared links come with Basic: the owner's organization is on it."""
    await set_plan(services, await own_organization(services, owner), "basic")


@pytest.fixture
async def anonymous(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        yield http


async def _post_form(
    client: httpx.AsyncClient, site_domain: str, path: str, form: dict[str, str]
) -> httpx.Response:
    token = await csrf_token(client, f"/{site_domain}/sharing")
    return await client.post(path, data={**form, "csrf_token": token})


async def _create_link(
    client: httpx.AsyncClient, site_domain: str, label: str = "", password: str = ""
) -> httpx.Response:
    form = {"label": label, "password": password}
    return await _post_form(client, site_domain, f"/{site_domain}/sharing/links", form)


async def _set_public(client: httpx.AsyncClient, site_domain: str, value: str) -> httpx.Response:
    path = f"/{site_domain}/sharing/public"
    return await _post_form(client, site_domain, path, {"public": value})


async def _site(services: Services, site_domain: str) -> Site:
    async with services.sessions() as session:
        return (await session.exec(select(Site).where(Site.domain == site_domain))).one()


async def _links(services: Services, site_domain: str) -> list[SharedLink]:
    site = await _site(services, site_domain)
    query = select(SharedLink).where(SharedLink.site_id == site.id).order_by(col(SharedLink.id))
    async with services.sessions() as session:
        return list((await session.exec(query)).all())


def _elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    tree = html5lib.parse(markup, namespaceHTMLElements=False)
    return [(node.tag, dict(node.attrib)) for node in tree.iter()]


def _assert_safe(markup: str, what: str) -> None:
    """A card holds no element or attribute that a tracked value could have smuggled in."""
    for tag, attributes in _elements(markup):
        assert tag not in ("script", "img"), what
        assert not any(a.startswith(("on", "hx-")) for a in attributes), what


# A public dashboard is the same for everyone: CDNs may keep it a minute. A shared link is a
# credential (revocable, with expiring access tokens): only the browser may keep it.
CACHED_BY = {"/public/": "max-age=60, s-maxage=60, public", "/share/": "max-age=60, private"}


def _assert_view_headers(response: httpx.Response, site_domain: str, extra: list[str]) -> None:
    """No cookie; framed by exactly the site's origins; cached for a minute, by whom it may."""
    assert "set-cookie" not in response.headers, response.request.url
    policy = response.headers["content-security-policy"]
    assert policy.count("frame-ancestors") == 1
    match = FRAMED_BY.search(policy)
    assert match
    expected = [f"https://{site_domain}", f"https://www.{site_domain}", *extra]
    assert match[1].split() == expected
    assert "script-src 'self'" in policy
    (cache_control,) = [
        value for prefix, value in CACHED_BY.items() if response.url.path.startswith(prefix)
    ]
    assert response.headers["cache-control"] == cache_control
    assert "vary" not in response.headers  # the same answer whoever asks, logged in or not
    assert "unsafe-inline" not in policy


# --- management -------------------------------------------------------------------------------


async def test_admin_creates_lists_and_revokes_links(owner_client, services, site_domain):
    empty = await owner_client.get(f"/{site_domain}/sharing")
    assert empty.status_code == 200
    assert "No shared links yet" in empty.text

    assert (await _create_link(owner_client, site_domain, "Board")).status_code == 303
    protected = await _create_link(owner_client, site_domain, "Investors", LINK_PASSWORD)
    assert protected.status_code == 303
    open_link, locked_link = await _links(services, site_domain)
    assert (open_link.label, open_link.password_hash) == ("Board", None)
    assert locked_link.password_hash is not None
    assert locked_link.password_hash.startswith("$argon2id$")
    assert len(open_link.slug) == 22
    assert open_link.slug != locked_link.slug

    page = await owner_client.get(f"/{site_domain}/sharing")
    base_url = services.settings.BASE_URL.rstrip("/")
    for link in (open_link, locked_link):
        assert f"{base_url}/share/{link.slug}" in page.text
    rows = re.findall(r"<tr>\s*<td>([^<]*)</td>.*?<td>(Yes|No)</td>", page.text, re.S)
    assert rows == [("Investors", "Yes"), ("Board", "No")]  # newest first

    opened = await owner_client.get(f"/share/{open_link.slug}?access=junk")
    assert opened.status_code == 200
    assert "junk" not in opened.text  # an open link carries no access token
    revoke = f"/{site_domain}/sharing/links/{open_link.id}/revoke"
    assert (await _post_form(owner_client, site_domain, revoke, {})).status_code == 303
    assert [link.id for link in await _links(services, site_domain)] == [locked_link.id]
    gone = await owner_client.get(f"/share/{open_link.slug}", headers=HTML)
    unknown = await owner_client.get("/share/no-such-link-at-all", headers=HTML)
    assert gone.status_code == unknown.status_code == 404
    assert gone.text == unknown.text
    card = await owner_client.get(f"/share/{open_link.slug}/cards/overview")
    assert card.status_code == 404


@pytest.mark.parametrize(
    ("label", "password", "message"),
    [
        ("x" * 101, "", "at most 100 characters"),
        ("Short password", "too short", "at least 10 characters"),
    ],
)
async def test_bad_link_forms_are_refused(
    owner_client, services, site_domain, label, password, message
):
    response = await _create_link(owner_client, site_domain, label, password)
    assert response.status_code == 400
    assert message in response.text
    assert await _links(services, site_domain) == []


async def _sharing_requests(client: httpx.AsyncClient, site_domain: str, link_id: int) -> list[int]:
    """Status codes of every sharing page and action, with a valid CSRF token."""
    token = await csrf_token(client, "/")  # the logout form of any logged-in page
    base = f"/{site_domain}/sharing"
    forms = [
        (f"{base}/links", {"label": "Mine now", "password": ""}),
        (f"{base}/public", {"public": "on"}),
        (f"{base}/links/{link_id}/revoke", {}),
    ]
    statuses = [(await client.get(base)).status_code]
    for path, form in forms:
        statuses.append((await client.post(path, data={**form, "csrf_token": token})).status_code)
    return statuses


async def test_viewers_get_403_and_strangers_404(owner_client, services, site_domain):
    assert (await _create_link(owner_client, site_domain, "Team")).status_code == 303
    (link,) = await _links(services, site_domain)
    assert link.id is not None
    viewer, stranger = await new_user(services), await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as client:
        assert await _sharing_requests(client, site_domain, link.id) == [403] * 4
    async with logged_in(services, stranger) as client:
        assert await _sharing_requests(client, site_domain, link.id) == [404] * 4
    assert [row.label for row in await _links(services, site_domain)] == ["Team"]
    assert (await _site(services, site_domain)).public is False
    async with make_client(services, peer=random_peer(), scheme="https") as client:
        login = await client.get(f"/{site_domain}/sharing")
    assert login.headers["location"] == f"/login?next=/{site_domain}/sharing"


async def test_admins_manage_sharing(services, site_domain, owner):
    admin = await new_user(services)
    await join(services, admin, site_domain, Role.ADMIN)
    async with logged_in(services, admin) as client:
        assert (await client.get(f"/{site_domain}/sharing")).status_code == 200
        assert (await _create_link(client, site_domain, "By an admin")).status_code == 303
    (link,) = await _links(services, site_domain)
    assert link.created_by_id == admin.id


async def test_revoking_another_sites_link_is_404(owner_client, services, site_domain, owner):
    other = await add_site(services.sessions, f"other-{site_domain}")
    other_owner = await new_user(services)
    async with services.sessions() as session:
        stored = await session.get(Site, other.id)
        assert stored is not None
        stored.organization_id = await _organization_of(services, other_owner)
        session.add(stored)
        await session.commit()
    await set_plan(services, stored.organization_id, "basic")
    async with logged_in(services, other_owner) as client:
        assert (await _create_link(client, other.domain, "Theirs")).status_code == 303
    (theirs,) = await _links(services, other.domain)

    revoke = f"/{site_domain}/sharing/links/{theirs.id}/revoke"
    assert (await _post_form(owner_client, site_domain, revoke, {})).status_code == 404
    foreign = f"/{other.domain}/sharing/links/{theirs.id}/revoke"
    assert (await _post_form(owner_client, site_domain, foreign, {})).status_code == 404
    assert [link.id for link in await _links(services, other.domain)] == [theirs.id]
    missing = f"/{site_domain}/sharing/links/999999999/revoke"
    assert (await _post_form(owner_client, site_domain, missing, {})).status_code == 404


async def _organization_of(services: Services, user: User) -> int:
    async with services.sessions() as session:
        query = select(Membership.organization_id).where(Membership.user_id == user.id)
        return (await session.exec(query)).one()


async def test_public_toggle(owner_client, anonymous, services, site_domain):
    assert (await anonymous.get(f"/public/{site_domain}")).status_code == 404
    assert (await _set_public(owner_client, site_domain, "on")).status_code == 303
    assert (await _site(services, site_domain)).public is True
    page = await owner_client.get(f"/{site_domain}/sharing")
    assert f"/public/{site_domain}" in page.text
    assert "Make it private" in page.text
    assert (await anonymous.get(f"/public/{site_domain}")).status_code == 200
    assert (await anonymous.get(f"/public/{site_domain}/cards/overview")).status_code == 200

    assert (await _set_public(owner_client, site_domain, "off")).status_code == 303
    assert (await _site(services, site_domain)).public is False
    assert (await anonymous.get(f"/public/{site_domain}")).status_code == 404
    assert (await anonymous.get(f"/public/{site_domain}/cards/overview")).status_code == 404
    assert (await _set_public(owner_client, site_domain, "maybe")).status_code == 400
    assert (await _site(services, site_domain)).public is False


async def test_organization_awaiting_deletion_hides_views(
    owner_client, anonymous, services, site_domain
):
    await _set_public(owner_client, site_domain, "on")
    await _create_link(owner_client, site_domain, "Board")
    (link,) = await _links(services, site_domain)
    paths = [f"/public/{site_domain}", f"/share/{link.slug}", f"/share/{link.slug}/cards/pages"]
    for path in paths:
        assert (await anonymous.get(path)).status_code == 200, path
    site = await _site(services, site_domain)
    await mark_deleted(services, Organization, site.organization_id)
    for path in [*paths, f"/public/{site_domain}/cards/pages"]:
        assert (await anonymous.get(path)).status_code == 404, path


# --- read-only views --------------------------------------------------------------------------


async def _track_hostile_visits(
    anonymous: httpx.AsyncClient, services: Services, domain: str
) -> None:
    hostile = {
        "n": MARKER[:100],
        "u": f"https://{domain}/{MARKER}?utm_source={MARKER}",
        "d": domain,
        "r": f"https://evil.example/{MARKER}",
        "p": {"k": MARKER},
    }
    pageview = {"n": "pageview", "u": f"https://{domain}/{MARKER}", "d": domain}
    for event in (hostile, pageview):
        assert (await post_event(anonymous, event)).status_code == 202
    services.flusher.drain()


async def _allow_hostnames(services: Services, site_domain: str, hostnames: list[str]) -> None:
    site = await _site(services, site_domain)
    async with services.sessions() as session:
        stored = await session.get(Site, site.id)
        assert stored is not None
        stored.allowed_hostnames = hostnames
        session.add(stored)
        await session.commit()


@pytest.mark.parametrize("viewer", ["anonymous", "logged in"])
async def test_views_render_real_data_without_cookies(
    owner_client, anonymous, services, site_domain, viewer
):
    await _allow_hostnames(
        services, site_domain, sorted([site_domain, "*.example.net", "blog.example.org"])
    )
    await _track_hostile_visits(anonymous, services, site_domain)
    await _set_public(owner_client, site_domain, "on")
    await _create_link(owner_client, site_domain, "Board")
    (link,) = await _links(services, site_domain)
    client = anonymous if viewer == "anonymous" else owner_client
    extra = ["https://*.example.net", "https://blog.example.org"]

    for base in (f"/public/{site_domain}", f"/share/{link.slug}"):
        page = await client.get(f"{base}?period=today", headers=HTML)
        assert page.status_code == 200, base
        _assert_view_headers(page, site_domain, extra)
        assert "Log out" not in page.text
        assert "hx-headers" not in page.text
        assert "Read-only dashboard" in page.text
        assert "export.zip" not in page.text  # an export needs a login
        for name in CARDS:
            assert f'hx-get="{base}/cards/{name}?period=today"' in page.text
            card = await client.get(f"{base}/cards/{name}?period=today")
            assert card.status_code == 200, (base, name)
            _assert_view_headers(card, site_domain, extra)
            _assert_safe(card.text, f"{base} {name}")
        overview = await client.get(f"{base}/cards/overview?period=today")
        assert 'data-metric="pageviews">1</span>' in overview.text
        pages = await client.get(f"{base}/cards/pages?period=today")
        assert "&lt;script" in pages.text  # shown as text, not markup
    assert (await client.get(f"/share/{link.slug}/cards/nope")).status_code == 404
    assert (await client.get(f"/share/{link.slug}?period=forever")).status_code == 400


async def test_private_dashboard_keeps_its_urls(owner_client, site_domain):
    page = await owner_client.get(f"/{site_domain}?period=7d", headers=HTML)
    assert f'hx-get="/{site_domain}/cards/overview?period=7d"' in page.text
    assert f'href="/{site_domain}?period=today"' in page.text
    assert "All sites" in page.text
    assert "Log out" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


# --- password-protected links -----------------------------------------------------------------


async def test_password_link_needs_the_password(owner_client, anonymous, services, site_domain):
    await _create_link(owner_client, site_domain, "Investors", LINK_PASSWORD)
    (link,) = await _links(services, site_domain)
    base = f"/share/{link.slug}"

    form = await anonymous.get(base, headers=HTML)
    assert form.status_code == 200
    assert "This dashboard needs a password" in form.text
    assert form.headers["cache-control"] == "no-store"
    assert (await anonymous.get(f"{base}/cards/overview")).status_code == 403

    token = await csrf_token(anonymous, base)
    wrong = await anonymous.post(base, data={"password": "not the one!", "csrf_token": token})
    assert wrong.status_code == 400
    assert "That password is not right" in wrong.text

    right = await anonymous.post(base, data={"password": LINK_PASSWORD, "csrf_token": token})
    assert right.status_code == 303
    assert right.headers["location"] == base  # nothing to copy from the address bar
    access = _access_cookie(right, link)
    page = await anonymous.get(base, headers=HTML)
    assert page.status_code == 200
    _assert_view_headers(page, site_domain, [])
    assert access not in page.text
    assert f'hx-get="{base}/cards/overview?period=30d"' in page.text
    assert f'href="{base}?period=7d"' in page.text
    for name in CARDS:
        card = await anonymous.get(f"{base}/cards/{name}?period=7d")
        assert card.status_code == 200, name
        _assert_view_headers(card, site_domain, [])

    async with make_client(services, peer=random_peer(), scheme="https") as stranger:
        assert (await stranger.get(f"{base}/cards/overview")).status_code == 403
        forged = f"{access.split('.')[0]}.{'0' * 64}"
        with_forged = {"Cookie": f"{_cookie_name(link)}={forged}"}
        assert (
            await stranger.get(f"{base}/cards/overview", headers=with_forged)
        ).status_code == 403
        expired_page = await stranger.get(base, headers={**HTML, **with_forged})
        assert "has expired" in expired_page.text


def _cookie_name(link: SharedLink) -> str:
    return f"__Secure-ursa_share_{link.slug}"


def _access_cookie(response: httpx.Response, link: SharedLink) -> str:
    """The access token `response` sets, after checking the cookie's attributes."""
    (header,) = response.headers.get_list("set-cookie")
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    assert name == _cookie_name(link)
    named = dict(attribute.partition("=")[::2] for attribute in attributes)
    assert {key.lower(): value for key, value in named.items()} == {
        "max-age": str(ACCESS_SECONDS),
        "path": f"/share/{link.slug}",  # case-sensitive: the slug, exactly
        "samesite": "lax",
        "httponly": "",
        "secure": "",
    }
    return value


async def test_access_urls_of_before_are_ignored(owner_client, anonymous, services, site_domain):
    """A `?access=` token, as addresses carried it before, opens nothing any more."""
    await _create_link(owner_client, site_domain, "Investors", LINK_PASSWORD)
    (link,) = await _links(services, site_domain)
    base = f"/share/{link.slug}"
    token = access_token(services.settings.SECRET_KEY, link, dt.datetime.now(dt.UTC))
    page = await anonymous.get(f"{base}?access={token}", headers=HTML)
    assert page.status_code == 200
    assert "This dashboard needs a password" in page.text
    assert (await anonymous.get(f"{base}/cards/overview?access={token}")).status_code == 403


async def test_each_link_keeps_its_own_access(owner_client, anonymous, services, site_domain):
    """Two protected links unlocked in one browser: two cookies, each opening its own link."""
    for label in ("Investors", "Board"):
        await _create_link(owner_client, site_domain, label, LINK_PASSWORD)
    first, second = await _links(services, site_domain)
    for link in (first, second):
        base = f"/share/{link.slug}"
        token = await csrf_token(anonymous, base)
        unlocked = await anonymous.post(base, data={"password": LINK_PASSWORD, "csrf_token": token})
        _access_cookie(unlocked, link)
    for link in (first, second):
        assert (await anonymous.get(f"/share/{link.slug}/cards/overview")).status_code == 200
    assert len({_cookie_name(first), _cookie_name(second)} & set(anonymous.cookies)) == 2

    async with make_client(services, peer=random_peer(), scheme="https") as stranger:
        borrowed = {"Cookie": f"{_cookie_name(second)}={anonymous.cookies[_cookie_name(first)]}"}
        card = await stranger.get(f"/share/{second.slug}/cards/overview", headers=borrowed)
        assert card.status_code == 403


async def test_access_tokens_expire_and_follow_the_password(services, site_domain):
    secret = services.settings.SECRET_KEY
    link = SharedLink(site_id=1, slug="s" * 22, password_hash="$argon2id$one")
    now = dt.datetime.now(dt.UTC)
    token = access_token(secret, link, now)
    assert access_valid(secret, link, token, now + dt.timedelta(seconds=ACCESS_SECONDS - 5))
    assert not access_valid(secret, link, token, now + dt.timedelta(seconds=ACCESS_SECONDS + 5))
    changed = SharedLink(site_id=1, slug=link.slug, password_hash="$argon2id$two")
    assert not access_valid(secret, changed, token, now)
    other = SharedLink(site_id=1, slug="t" * 22, password_hash=link.password_hash)
    assert not access_valid(secret, other, token, now)
    for junk in ("", "abc", "123", f"{token}x", "-1.abc"):
        assert not access_valid(secret, link, junk, now)


async def test_too_many_wrong_passwords_are_refused(owner_client, anonymous, services, site_domain):
    await _create_link(owner_client, site_domain, "Investors", LINK_PASSWORD)
    (link,) = await _links(services, site_domain)
    base = f"/share/{link.slug}"
    token = await csrf_token(anonymous, base)
    for _ in range(SHARE_PASSWORD_PER_IP.limit):
        wrong = await anonymous.post(base, data={"password": "wrong guess", "csrf_token": token})
        assert wrong.status_code == 400
    refused = await anonymous.post(base, data={"password": LINK_PASSWORD, "csrf_token": token})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
