"""Public dashboards and shared links: read-only dashboards for people without an account.

A site is readable without an account when `Site.public` is set (`/public/<domain>`) and through
each of its `SharedLink`s (`/share/<slug>`; the slug, 128 random bits, is the secret, and
revoking deletes the row), optionally with a password. What the views set, cache and allow to
frame them: docs/security.md ("Sharing").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, delete
from sqlmodel import col, select

from app.accounts.passwords import hash_password, verify_password
from app.analytics.queries.periods import Period
from app.cache.ratelimit import Rule, Scope
from app.dashboard.cards import Card, DetailsQuery, Tab, build_card, build_details, site_period
from app.dashboard.view import View
from app.errors import InvalidInput, NotFound
from app.models import Organization, SharedLink, Site, User
from app.services import Services
from app.web.security_headers import content_security_policy

# Guessing a link's password from one address: 10 tries per 10 minutes is ~1,440 a day, against
# a password of at least 10 characters hashed with argon2id.
SHARE_PASSWORD_PER_IP = Rule("share-password:ip", Scope.IP, limit=10, window_seconds=10 * 60)
ACCESS_SECONDS = 12 * 60 * 60
LABEL_MAX_LENGTH = 100
SLUG_BYTES = 16  # 22 URL-safe characters; the column holds 32
SLUG_MAX_LENGTH = 32
NOT_FOUND = "no such shared dashboard"
# How old a view's numbers may be: their cache entries, and what a browser or CDN may keep.


def _no_forms() -> NoReturn:
    raise RuntimeError("a shared dashboard rendered a form, which would set a CSRF cookie")


# Template context of every read-only view: it shadows base.html's globals, so the page shows
# no account menu and can never call `csrf_token()` (which may set a cookie), even for a
# visitor who happens to be logged in.
# The views render no account UI. A protected link opens at its own address only, never in a
# frame: browsers send no `SameSite=Lax` cookie to a frame inside another site, neither its
# access nor the CSRF cookie.
ANONYMOUS_CONTEXT: dict[str, Any] = {"current_user_id": lambda: None, "csrf_token": _no_forms}


@dataclass(frozen=True)
class SharedView:
    """What a read-only view shows: the site, and where its cards are fetched from."""

    site: Site
    cards_base: str  # `/share/<slug>` or `/public/<domain>`
    link: SharedLink | None = None

    @property
    def protected(self) -> bool:
        return self.link is not None and self.link.password_hash is not None


# --- looking views up (public routes) ---------------------------------------------------------


def _site_is_live() -> ColumnElement[bool]:
    """The site's organization exists and does not await deletion: a site that fails it, a
    revoked link and a site that is not public all answer like an unknown one, 404."""
    live = select(Organization.id).where(col(Organization.deleted_at).is_(None))
    return col(Site.organization_id).in_(live)


async def public_view(services: Services, domain: str) -> SharedView:
    """The public dashboard of `domain`; `NotFound` unless the site is public and live."""
    query = select(Site).where(Site.domain == domain, col(Site.public).is_(True), _site_is_live())
    async with services.sessions() as session:
        site = (await session.exec(query)).first()
    if site is None:
        raise NotFound(NOT_FOUND)
    return SharedView(site, f"/public/{site.domain}")


async def link_view(services: Services, slug: str) -> SharedView:
    """The dashboard behind a shared link; `NotFound` for an unknown or revoked link."""
    if not slug or len(slug) > SLUG_MAX_LENGTH:
        raise NotFound(NOT_FOUND)
    query = (
        select(Site, SharedLink)
        .join(SharedLink, col(SharedLink.site_id) == Site.id)
        .where(SharedLink.slug == slug, _site_is_live())
    )
    async with services.sessions() as session:
        row = (await session.exec(query)).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    site, link = row
    return SharedView(site, f"/share/{link.slug}", link)


async def card_data(
    services: Services, card: Card, site: Site, view: View, tab: Tab | None = None
) -> tuple[Period, dict[str, Any]]:
    """A card's numbers for a read-only view, from the shared cache when they are fresh:
    one entry per card and tab, resolved range and the rest of the view (filters,
    comparison)."""

    async def build() -> dict[str, Any]:
        return (await build_card(card, services.clickhouse, site, view, tab))[1]

    name = card.name if tab is None else f"{card.name}:{tab.name}"
    return await _cached(services, site, view, name, "", build)


async def details_data(
    services: Services, card: Card, site: Site, view: View, tab: Tab, asked: DetailsQuery
) -> tuple[Period, dict[str, Any]]:
    """A Details page for a read-only view, cached like a card (per search, sort and page)."""

    async def build() -> dict[str, Any]:
        return (await build_details(services.clickhouse, site, view, tab, asked))[1]

    extra = f"{asked.search}\0{asked.sort}\0{asked.page}"
    return await _cached(services, site, view, f"{card.name}:{tab.name}:details", extra, build)


async def _cached(
    services: Services,
    site: Site,
    view: View,
    name: str,
    extra: str,
    build: Callable[[], Awaitable[dict[str, Any]]],
) -> tuple[Period, dict[str, Any]]:
    period = site_period(site, view)
    state = hashlib.sha256(f"{view.link()}\0{extra}".encode()).hexdigest()[:24]
    key = services.view_cards.key(
        site.id,
        name,
        period.timezone,
        int(period.start.timestamp()),
        int(period.end.timestamp()),
        state,
    )
    return period, await services.view_cards.get_or_build(key, build)


def frame_ancestors(site: Site) -> list[str]:
    """The origins that may frame the site's shared views: its domain, `www.`, and each allowed
    hostname (`*.example.com` stays a wildcard), all over https, without repeats."""
    hosts = [site.domain, f"www.{site.domain}", *site.allowed_hostnames]
    return list(dict.fromkeys(f"https://{host}" for host in hosts))


def view_headers(site: Site) -> dict[str, str]:
    """Response headers of a read-only view: a policy that lets the site frame it."""
    return {"Content-Security-Policy": content_security_policy(frame_ancestors(site))}


# --- passwords and access tokens --------------------------------------------------------------


async def password_matches(link: SharedLink, password: str) -> bool:
    """Whether `password` opens `link` (argon2 verify in a worker thread, ~40 ms)."""
    if link.password_hash is None:
        return True
    return await asyncio.to_thread(verify_password, link.password_hash, password)


def access_token(secret: str, link: SharedLink, now: dt.datetime) -> str:
    """A token opening `link` for `ACCESS_SECONDS`: `<expiry>.<hmac>`, an HMAC under `SECRET_KEY`
    of the slug, the link's password hash and the expiry, so it dies with the link (revoked: no
    row) or its password (another hash). The browser keeps it in a cookie of its own per link
    (`app.accounts.request_auth.grant_share_access`), never in the URL; `?access=` is ignored."""
    expires = int(now.timestamp()) + ACCESS_SECONDS
    return f"{expires}.{_access_mac(secret, link, expires)}"


def access_valid(secret: str, link: SharedLink, token: str, now: dt.datetime) -> bool:
    """Whether `token` opens `link` now: unexpired, and signed for this slug and password."""
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) <= now.timestamp():
        return False
    return hmac.compare_digest(_access_mac(secret, link, int(expires_text)), mac)


def _access_mac(secret: str, link: SharedLink, expires: int) -> str:
    message = f"share-access\0{link.slug}\0{link.password_hash or ''}\0{expires}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --- managing (admins of the site) ------------------------------------------------------------


async def set_public(services: Services, site: Site, public: bool) -> None:
    """Turn the site's public dashboard on or off."""
    async with services.sessions() as session:
        stored = await session.get(Site, site.id)
        if stored is None:
            raise NotFound(f"no site named {site.domain}")
        stored.public = public
        session.add(stored)
        await session.commit()


async def links_of(services: Services, site: Site) -> list[SharedLink]:
    """The site's shared links, newest first."""
    query = (
        select(SharedLink)
        .where(SharedLink.site_id == site.id)
        .order_by(col(SharedLink.created_at).desc(), col(SharedLink.id).desc())
    )
    async with services.sessions() as session:
        return list((await session.exec(query)).all())


async def create_link(
    services: Services, site: Site, creator: User, label: str, password: str = ""
) -> SharedLink:
    """A new shared link; an empty `password` means none. `InvalidInput` for a bad label or
    a too-short password (the hash runs in a worker thread)."""
    assert site.id is not None
    label = _checked_label(label)
    password_hash = await asyncio.to_thread(hash_password, password) if password else None
    link = SharedLink(
        site_id=site.id,
        slug=secrets.token_urlsafe(SLUG_BYTES),
        label=label,
        password_hash=password_hash,
        created_by_id=creator.id,
    )
    async with services.sessions() as session:
        session.add(link)
        await session.commit()
        await session.refresh(link)
    return link


def _checked_label(raw: str) -> str:
    label = " ".join(raw.split())
    if len(label) > LABEL_MAX_LENGTH:
        raise InvalidInput(f"the label must have at most {LABEL_MAX_LENGTH} characters")
    return label


async def revoke_link(services: Services, site: Site, link_id: int) -> None:
    """Delete a link of `site`; `NotFound` when it has no link with this id."""
    statement = delete(SharedLink).where(
        col(SharedLink.id) == link_id, col(SharedLink.site_id) == site.id
    )
    async with services.sessions() as session:
        result = await session.exec(statement)
        await session.commit()
    if result.rowcount == 0:
        raise NotFound("this site has no such shared link")


def share_url(base_url: str, link: SharedLink) -> str:
    return f"{base_url.rstrip('/')}/share/{link.slug}"


def public_url(base_url: str, site: Site) -> str:
    return f"{base_url.rstrip('/')}/public/{site.domain}"


def management_context(
    services: Services, site: Site, links: Sequence[SharedLink]
) -> dict[str, Any]:
    """What the sharing page shows: the public switch and the links with their full URLs."""
    base_url = services.settings.BASE_URL
    return {
        "site": site,
        "public_url": public_url(base_url, site),
        "links": [{"link": link, "url": share_url(base_url, link)} for link in links],
        "label_max": LABEL_MAX_LENGTH,
    }
