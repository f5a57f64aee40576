"""Dashboard pages: the site list, a site's dashboard, one htmx partial per card, the export.

All of them sit behind the login guard (`app.main`); each checks membership of the site.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.analytics.queries.filters import Filter
from app.billing.entitlements import ensure_site_feature
from app.billing.overview import billing_notice
from app.billing.plans import Feature
from app.cache.ratelimit import EXPORT_PER_USER, limited
from app.dashboard.cards import build_card, build_details, card_named, filter_suggestions
from app.dashboard.export import export_zip
from app.dashboard.home import SPARK_HEIGHT, SPARK_WIDTH, site_rows
from app.dashboard.page import (
    card_context,
    dashboard_context,
    details_context,
    details_of,
    shown_of,
    tab_of,
    view_of,
)
from app.dashboard.performance import performance_context
from app.dashboard.view import View, split_values, view_in
from app.errors import NotFound
from app.models import Role, User
from app.organizations.access import ROLE_RANK, site_for_member, site_for_request
from app.routes import FORM
from app.services import Services
from app.sites import segments
from app.sites.registry import sites_of_user

# An export is one user's: a browser may keep it a minute (a second click re-downloads nothing
# new, the rollups change by the minute at most), a shared cache never (`private`), and
# `Vary: Cookie` tells any cache that what it holds depends on who asked.
EXPORT_CACHE = CacheControlHeader(private=True, max_age=60)
SPARK = {"width": SPARK_WIDTH, "height": SPARK_HEIGHT}


@get("/", name="home")
async def home(services: NamedDependency[Services], user: NamedDependency[User]) -> Template:
    sites = await sites_of_user(services.sessions, user)
    now = dt.datetime.now(dt.UTC)
    rows = await anyio.to_thread.run_sync(site_rows, services.clickhouse, sites, now)
    context = {"sites": rows, "base_url": services.settings.BASE_URL, "spark": SPARK}
    return Template("home.html", context=context)


@get("/{domain:str}", name="dashboard")
async def dashboard(
    request: Request[Any, Any, Any], services: NamedDependency[Services], domain: FromPath[str]
) -> Template:
    access = await site_for_request(request, services, domain)
    context = {
        **dashboard_context(access.site, view_of(request)),
        "can_manage": ROLE_RANK[access.role] >= ROLE_RANK[Role.ADMIN],
        "billing_notice": await billing_notice(services.sessions, access.site.organization_id),
    }
    return Template("dashboard.html", context=context)


@get("/{domain:str}/cards/{card:str}", name="card")
async def card(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    card: FromPath[str],
) -> Template:
    site = (await site_for_request(request, services, domain)).site  # first: a deleted user
    spec = card_named(card)  # is logged out whatever the card
    view = view_of(request)
    tab = tab_of(request, spec, view)
    scope, data = await build_card(spec, services.clickhouse, site, view, tab)
    geo = bool(services.settings.GEOIP_DB)
    base = f"/{site.domain}"
    context = {**card_context(spec, site, view, scope.period, base, tab, geo), **data}
    return Template(spec.template, context=context)


class SegmentForm(Struct):
    name: str = ""
    view: str = ""  # the dashboard's query string (`?period=…&f=…`) the segment is saved from


@post("/{domain:str}/segments", name="segment-save", status_code=303)
async def save_segment(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[SegmentForm, FORM],
) -> Redirect:
    """Save the filters of the view the form was sent from as a segment, and go back to it."""
    access = await site_for_member(services, user, domain, at_least=Role.ADMIN)
    await ensure_site_feature(services.sessions, access.site, Feature.SEGMENTS)
    view = _sent_from(data)
    await segments.save_segment(services.sessions, access.site, data.name, view.filters)
    return Redirect(f"/{access.site.domain}{view.link()}", status_code=303)


@post("/{domain:str}/segments/delete", name="segment-delete", status_code=303)
async def delete_segment(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[SegmentForm, FORM],
) -> Redirect:
    access = await site_for_member(services, user, domain, at_least=Role.ADMIN)
    await segments.delete_segment(services.sessions, access.site, data.name)
    return Redirect(f"/{access.site.domain}{_sent_from(data).link()}", status_code=303)


def _sent_from(data: SegmentForm) -> View:
    return view_in(data.view)


@get("/{domain:str}/filter", name="filter-add", status_code=303)
async def add_filter(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    view: FromQuery[str] = "",
    dimension: FromQuery[str] = "",
    operator: FromQuery[str] = "is",
    value: FromQuery[str] = "",
) -> Redirect:
    """The filter dialog's answer: the dashboard of `view` with one more filter."""
    site = (await site_for_request(request, services, domain)).site
    item = Filter(dimension, operator, split_values(value))
    return Redirect(f"/{site.domain}{view_in(view).adding(item)}", status_code=303)


@get("/{domain:str}/suggestions", name="filter-suggestions")
async def suggestions(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    view: FromQuery[str] = "",
    dimension: FromQuery[str] = "page",
    value: FromQuery[str] = "",
) -> Template:
    """Values of `dimension` seen in `view` (containing `value`), for the dialog's datalist."""
    site = (await site_for_request(request, services, domain)).site
    shown = view_in(view)
    found = await anyio.to_thread.run_sync(
        filter_suggestions, services.clickhouse, site, shown, dimension, value
    )
    return Template("partials/suggestions.html", context={"values": found})


@get("/{domain:str}/performance", name="performance")
async def performance_page(
    request: Request[Any, Any, Any], services: NamedDependency[Services], domain: FromPath[str]
) -> Template:
    """Percentiles, the slowest pages and the distribution of the view's page loads."""
    access = await site_for_request(request, services, domain)
    view, shown = view_of(request), shown_of(request)
    page = f"/{access.site.domain}/performance"
    data = await anyio.to_thread.run_sync(
        performance_context, services.clickhouse, access.site, view, shown, page
    )
    context = {**dashboard_context(access.site, view), **data, "page_path": "/performance"}
    return Template("performance.html", context=context)


@get("/{domain:str}/cards/{card:str}/details", name="card-details")
async def card_details(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
    card: FromPath[str],
) -> Template:
    """A breakdown tab's full list: search, sort by a metric column, pages of 100."""
    site = (await site_for_request(request, services, domain)).site
    spec = card_named(card)
    view, asked = view_of(request), details_of(request)
    tab = tab_of(request, spec, view)
    if tab is None:
        raise NotFound(f"the {spec.name} card has no details")
    scope, data = await build_details(services.clickhouse, site, view, tab, asked)
    base = f"/{site.domain}"
    context = details_context(spec, site, view, scope.period, base, tab, asked, data)
    return Template("details.html", context=context)


@get(
    "/{domain:str}/export.zip",
    name="export",
    cache_control=EXPORT_CACHE,
    opt=limited(EXPORT_PER_USER),
)
async def export(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    domain: FromPath[str],
) -> Response[bytes]:
    """The view (range and filters) as a ZIP of CSV files (`app.dashboard.export`)."""
    site = (await site_for_request(request, services, domain)).site
    view = view_of(request)
    found = await anyio.to_thread.run_sync(export_zip, services.clickhouse, site, view)
    headers = {
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "ETag": found.etag,
        "Vary": "Cookie",
    }
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(found.body, media_type="application/zip", headers=headers)


PUBLIC_ROUTES: list[HTTPRouteHandler] = []
PRIVATE_ROUTES = [
    home,
    dashboard,
    card,
    card_details,
    performance_page,
    export,
    save_segment,
    delete_segment,
    add_filter,
    suggestions,
]
