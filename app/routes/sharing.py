"""Public dashboards and shared links: managing them, and the read-only views.
Caching is explicit (the `*_CACHE` headers below) so that a CDN in front of Ursa does the right
thing, and every view counts per client address (`SHARED_VIEW_PER_IP`): each card is a query.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts.request_auth import ShareAccess, grant_share_access, share_access_token
from app.billing.entitlements import ensure_site_feature
from app.billing.plans import Feature
from app.cache.ratelimit import CREATE_PER_USER, SHARED_VIEW_PER_IP, limited
from app.cache.shared import VIEW_SECONDS
from app.dashboard.cards import card_named
from app.dashboard.page import (
    card_context,
    dashboard_context,
    details_context,
    details_of,
    tab_of,
    view_of,
)
from app.errors import Forbidden, InvalidInput, NotFound
from app.models import Role, Site, User
from app.organizations.access import site_for_member
from app.routes import FORM
from app.services import Services
from app.sites import sharing

# A public dashboard is the same for everyone and sets no cookie, so browsers and shared caches
# may keep it a minute; turning it off takes up to that long to reach visitors of a CDN.
PUBLIC_VIEW_CACHE = CacheControlHeader(public=True, max_age=VIEW_SECONDS, s_maxage=VIEW_SECONDS)
# A shared link is a credential: a shared cache would keep serving a copy after the link is
# revoked or its password changed, and past the access cookie's expiry (it does not key on it).
LINK_VIEW_CACHE = CacheControlHeader(private=True, max_age=VIEW_SECONDS)
VIEW_LIMIT = limited(SHARED_VIEW_PER_IP)
# The password form carries a CSRF token bound to this browser's cookie: never reused.
FORM_CACHE = CacheControlHeader(no_store=True)
BAD_GUESS = "That password is not right. Check it with whoever sent you the link."
EXPIRED_ACCESS = "Your access to this dashboard has expired. Enter the password again."


class PublicForm(Struct):
    public: str = ""


class LinkForm(Struct):
    label: str = ""
    password: str = ""


class PasswordForm(Struct):
    password: str = ""


# --- managing (admins) ------------------------------------------------------------------------


async def _admin_site(services: Services, user: User, domain: str) -> Site:
    return (await site_for_member(services, user, domain, at_least=Role.ADMIN)).site


async def _management_page(
    services: Services, site: Site, error: str | None = None, label: str = ""
) -> Template:
    links = await sharing.links_of(services, site)
    context = {**sharing.management_context(services, site, links), "error": error, "label": label}
    return Template("sharing/manage.html", context=context, status_code=400 if error else 200)


def _back_to_page(site: Site) -> Redirect:
    return Redirect(f"/{site.domain}/sharing", status_code=303)


@get("/{domain:str}/sharing", name="sharing")
async def manage(
    services: NamedDependency[Services], user: NamedDependency[User], domain: FromPath[str]
) -> Template:
    return await _management_page(services, await _admin_site(services, user, domain))


@post("/{domain:str}/sharing/public", name="sharing-public", status_code=303)
async def toggle_public(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[PublicForm, FORM],
) -> Redirect:
    site = await _admin_site(services, user, domain)
    if data.public not in ("on", "off"):
        raise InvalidInput("choose on or off for the public dashboard")
    await sharing.set_public(services, site, data.public == "on")
    return _back_to_page(site)


@post(
    "/{domain:str}/sharing/links",
    name="sharing-create",
    status_code=303,
    opt=limited(CREATE_PER_USER),
)
async def create_link(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[LinkForm, FORM],
) -> Redirect | Template:
    site = await _admin_site(services, user, domain)
    await ensure_site_feature(services.sessions, site, Feature.SHARED_LINKS)
    try:
        await sharing.create_link(services, site, user, data.label, data.password)
    except InvalidInput as exc:
        return await _management_page(services, site, error=str(exc), label=data.label)
    return _back_to_page(site)


@post("/{domain:str}/sharing/links/{link_id:int}/revoke", name="sharing-revoke", status_code=303)
async def revoke_link(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    link_id: FromPath[int],
) -> Redirect:
    site = await _admin_site(services, user, domain)
    await sharing.revoke_link(services, site, link_id)
    return _back_to_page(site)


# --- read-only views (no login; one cookie: a protected link's access) ------------------------


def _dashboard(request: Request[Any, Any, Any], view: sharing.SharedView) -> Template:
    """The dashboard template with card and period URLs under the view's base path."""
    site = view.site
    context = {
        **sharing.ANONYMOUS_CONTEXT,
        **dashboard_context(site, view_of(request)),
        "cards_base": view.cards_base,
    }
    return Template("sharing/dashboard.html", context=context, headers=sharing.view_headers(site))


async def _card(
    request: Request[Any, Any, Any], view: sharing.SharedView, services: Services, card: str
) -> Template:
    spec = card_named(card)
    site, shown = view.site, view_of(request)
    tab = tab_of(request, spec, shown)
    period, data = await sharing.card_data(services, spec, site, shown, tab)
    geo = bool(services.settings.GEOIP_DB)
    context = {
        **sharing.ANONYMOUS_CONTEXT,
        **card_context(spec, site, shown, period, view.cards_base, tab, geo),
        **data,
    }
    return Template(spec.template, context=context, headers=sharing.view_headers(site))


async def _details(
    request: Request[Any, Any, Any], view: sharing.SharedView, services: Services, card: str
) -> Template:
    spec = card_named(card)
    site, shown = view.site, view_of(request)
    tab = tab_of(request, spec, shown)
    asked = details_of(request)
    if tab is None:
        raise NotFound(f"the {spec.name} card has no details")
    period, data = await sharing.details_data(services, spec, site, shown, tab, asked)
    context = {
        **sharing.ANONYMOUS_CONTEXT,
        **details_context(spec, site, shown, period, view.cards_base, tab, asked, data),
    }
    return Template("details.html", context=context, headers=sharing.view_headers(site))


def _password_page(view: sharing.SharedView, error: str | None, status: int = 200) -> Template:
    """The password form of a protected link (it may set the CSRF cookie; never cached)."""
    headers = {**sharing.view_headers(view.site), FORM_CACHE.HEADER_NAME: FORM_CACHE.to_header()}
    return Template(
        "sharing/password.html",
        context={"slug": view.link.slug if view.link else "", "error": error},
        status_code=status,
        headers=headers,
    )


def _access(request: Request[Any, Any, Any], services: Services, view: sharing.SharedView) -> str:
    """The access token the browser keeps for the view's link ("" when it has none)."""
    if view.link is None:
        return ""
    return share_access_token(request, services.settings, view.link.slug)


def _has_access(services: Services, view: sharing.SharedView, access: str) -> bool:
    if not view.protected:
        return True
    assert view.link is not None
    now = dt.datetime.now(dt.UTC)
    return sharing.access_valid(services.settings.SECRET_KEY, view.link, access, now)


@get(
    "/public/{domain:str}",
    name="public-dashboard",
    cache_control=PUBLIC_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def public_dashboard(
    request: Request[Any, Any, Any], services: NamedDependency[Services], domain: FromPath[str]
) -> Template:
    return _dashboard(request, await sharing.public_view(services, domain))


@get(
    "/public/{domain:str}/cards/{card:str}",
    name="public-card",
    cache_control=PUBLIC_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def public_card(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    card: FromPath[str],
) -> Template:
    return await _card(request, await sharing.public_view(services, domain), services, card)


@get(
    "/share/{slug:str}",
    name="shared-dashboard",
    cache_control=LINK_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def shared_dashboard(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    slug: FromPath[str],
) -> Template:
    view = await sharing.link_view(services, slug)
    access = _access(request, services, view)
    if not _has_access(services, view, access):
        return _password_page(view, EXPIRED_ACCESS if access else None)
    return _dashboard(request, view)


@post(
    "/share/{slug:str}",
    name="shared-unlock",
    status_code=303,
    opt=limited(sharing.SHARE_PASSWORD_PER_IP),
)
async def unlock(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    slug: FromPath[str],
    data: Annotated[PasswordForm, FORM],
) -> Redirect | Template:
    view = await sharing.link_view(services, slug)
    if view.link is None or not view.protected:
        return Redirect(f"/share/{slug}", status_code=303)
    if not await sharing.password_matches(view.link, data.password):
        return _password_page(view, BAD_GUESS, status=400)
    token = sharing.access_token(services.settings.SECRET_KEY, view.link, dt.datetime.now(dt.UTC))
    grant = ShareAccess(view.link.slug, view.cards_base, token, sharing.ACCESS_SECONDS)
    grant_share_access(request, grant)
    return Redirect(view.cards_base, status_code=303)


@get(
    "/share/{slug:str}/cards/{card:str}",
    name="shared-card",
    cache_control=LINK_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def shared_card(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    slug: FromPath[str],
    card: FromPath[str],
) -> Template:
    view = await sharing.link_view(services, slug)
    if not _has_access(services, view, _access(request, services, view)):
        raise Forbidden("this shared dashboard needs its password; reload the page")
    return await _card(request, view, services, card)


@get(
    "/public/{domain:str}/cards/{card:str}/details",
    name="public-card-details",
    cache_control=PUBLIC_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def public_details(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    card: FromPath[str],
) -> Template:
    return await _details(request, await sharing.public_view(services, domain), services, card)


@get(
    "/share/{slug:str}/cards/{card:str}/details",
    name="shared-card-details",
    cache_control=LINK_VIEW_CACHE,
    opt=VIEW_LIMIT,
)
async def shared_details(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    slug: FromPath[str],
    card: FromPath[str],
) -> Template:
    view = await sharing.link_view(services, slug)
    access = _access(request, services, view)
    if not _has_access(services, view, access):
        return _password_page(view, EXPIRED_ACCESS if access else None)
    return await _details(request, view, services, card)


PUBLIC_ROUTES = [
    public_dashboard,
    public_card,
    public_details,
    shared_dashboard,
    unlock,
    shared_card,
    shared_details,
]
PRIVATE_ROUTES = [manage, toggle_public, create_link, revoke_link]
