"""The Stats API: v2's `POST /api/v2/query`, the legacy v1 endpoints, and the API's docs page.

The API routes sit behind `ApiKeyRequired` (a bearer key, 401 otherwise) and the per-key rate
limit (`app.main`); a site the key's user may not read is 404, as on the dashboard, and one whose
organization's plan lacks the API is 402 (`app.billing.entitlements`). Parsing and
answering live in `app.dashboard.stats_api` and `stats_api_v1`; these handlers only connect them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar import Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, Parameter
from litestar.response import Template

from app.accounts.request_auth import api_caller
from app.billing.entitlements import ensure_site_feature
from app.billing.plans import Feature
from app.dashboard import stats_api, stats_api_v1
from app.dashboard.stats_api import QueryRequest, QueryResponse
from app.models import Site
from app.organizations.access import site_for_member
from app.services import Services

AnyRequest = Request[Any, Any, Any]
V2 = ["Stats API v2"]
V1 = ["Stats API v1 (legacy)"]


@dataclass
class ApiError:
    error: str  # what is wrong, naming the field


@dataclass
class PlanRequired:
    error: str
    plan: str  # the organization's plan, which lacks the API
    upgrade_url: str  # its billing page


# The answers every API route may give besides its result, as the OpenAPI schema lists them.
ERRORS = {
    400: ResponseSpec(ApiError, description="A bad query: the error names the field"),
    401: ResponseSpec(ApiError, description="No API key, or a revoked or unknown one"),
    402: ResponseSpec(PlanRequired, description="The site's plan does not include the API"),
    404: ResponseSpec(ApiError, description="No such site among those the key's user may read"),
    429: ResponseSpec(
        ApiError, description="The key's rate limit: retry after the seconds of `Retry-After`"
    ),
}


async def _site(request: AnyRequest, services: Services, domain: str) -> Site:
    """The site the key's user may read, if its organization's plan includes the API (402)."""
    site = (await site_for_member(services, api_caller(request).user, domain)).site
    await ensure_site_feature(services.sessions, site, Feature.STATS_API)
    return site


@post(
    "/api/v2/query",
    name="api-v2-query",
    status_code=200,
    tags=V2,
    summary="Query a site's statistics",
    description="Plausible's Stats API v2 request and response; `site_id` is the domain.",
    responses=ERRORS,
)
async def query_v2(
    request: AnyRequest, services: NamedDependency[Services], data: JSONBody[QueryRequest]
) -> QueryResponse:
    query = stats_api.parse_query(data)
    site = await _site(request, services, query.site_id)
    now = dt.datetime.now(dt.UTC)
    return await anyio.to_thread.run_sync(
        stats_api.run_query, services.clickhouse, site, query, now
    )


SITE = Parameter(description="The site's domain")
PERIOD = Parameter(default="30d", description="day, 7d, 30d, month, 6mo, 12mo or custom")
DATE = Parameter(
    default=None, description="The day the period ends on or lies in; start,end for custom"
)
METRICS = Parameter(
    default="visitors", description="Comma-separated: " + ", ".join(stats_api_v1.METRICS)
)
FILTERS = Parameter(
    default="", description="event:page==/blog;visit:country==US|DE (==, !=, ~, !~)"
)


class V1Request:
    """The site and the shared parameters of a v1 request (a plain class: Litestar's signature
    model would try to convert a dataclass field by field)."""

    def __init__(self, site: Site, query: stats_api_v1.V1Query) -> None:
        self.site = site
        self.query = query


async def v1_request(
    request: AnyRequest,
    services: NamedDependency[Services],
    site_id: str = SITE,
    period: str = PERIOD,
    date: str | None = DATE,
    metrics: str = METRICS,
    filters: str = FILTERS,
) -> V1Request:
    """Dependency: the parameters every v1 endpoint shares, and the site they name."""
    query = stats_api_v1.parse_v1(site_id, period, date, metrics, filters)
    return V1Request(await _site(request, services, query.site_id), query)


V1_REQUEST = {"v1": Provide(v1_request)}


@get("/api/v1/stats/realtime/visitors", name="api-v1-realtime", tags=V1, responses=ERRORS)
async def realtime_visitors(
    request: AnyRequest,
    services: NamedDependency[Services],
    site_id: str = SITE,
) -> int:
    """Visitors on the site in the last five minutes."""
    site = await _site(request, services, site_id)
    now = dt.datetime.now(dt.UTC)
    return await anyio.to_thread.run_sync(
        stats_api_v1.realtime_visitors, services.clickhouse, site, now
    )


@get(
    "/api/v1/stats/aggregate",
    name="api-v1-aggregate",
    tags=V1,
    responses=ERRORS,
    dependencies=V1_REQUEST,
)
async def aggregate(
    services: NamedDependency[Services],
    v1: NamedDependency[V1Request],
    compare: str | None = Parameter(description="previous_period", default=None),
) -> dict[str, Any]:
    """Totals of the period, with the change against the previous one if asked."""
    now = dt.datetime.now(dt.UTC)
    return await anyio.to_thread.run_sync(
        stats_api_v1.aggregate, services.clickhouse, v1.site, v1.query, now, compare
    )


@get(
    "/api/v1/stats/timeseries",
    name="api-v1-timeseries",
    tags=V1,
    responses=ERRORS,
    dependencies=V1_REQUEST,
)
async def timeseries(
    services: NamedDependency[Services],
    v1: NamedDependency[V1Request],
    interval: str | None = Parameter(description="date, hour, week or month", default=None),
) -> dict[str, Any]:
    """The period's metrics per bucket, zero-filled."""
    now = dt.datetime.now(dt.UTC)
    return await anyio.to_thread.run_sync(
        stats_api_v1.timeseries, services.clickhouse, v1.site, v1.query, now, interval
    )


@get(
    "/api/v1/stats/breakdown",
    name="api-v1-breakdown",
    tags=V1,
    responses=ERRORS,
    dependencies=V1_REQUEST,
)
async def breakdown(
    services: NamedDependency[Services],
    v1: NamedDependency[V1Request],
    property: str = Parameter(default="", description="event:page, visit:source, event:props:…"),
    limit: int = Parameter(default=100, description="Rows per page, 1 to 1000"),
    page: int = Parameter(default=1, description="Page number, from 1"),
) -> dict[str, Any]:
    """The period's metrics per value of one property, most visitors first."""
    now = dt.datetime.now(dt.UTC)
    return await anyio.to_thread.run_sync(
        stats_api_v1.breakdown, services.clickhouse, v1.site, v1.query, now, property, limit, page
    )


@get("/api/docs", name="api-docs", include_in_schema=False)
async def api_docs(services: NamedDependency[Services]) -> Template:
    """How to call the API, with curl examples against this installation."""
    return Template("api_docs.html", context={"base_url": services.settings.BASE_URL})


API_ROUTES: list[HTTPRouteHandler] = [query_v2, realtime_visitors, aggregate, timeseries, breakdown]
PUBLIC_ROUTES = [api_docs]
PRIVATE_ROUTES: list[HTTPRouteHandler] = []
