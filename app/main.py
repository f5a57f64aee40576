"""`create_app(settings)` builds the Litestar app; wiring only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from litestar import Litestar, MediaType, Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from app.accounts.request_auth import (
    STATE_KEY,
    ApiKeyRequired,
    LoginRequired,
    RateLimits,
    RequestAuth,
    WebAuthMiddleware,
    csrf_token_for,
    current_user,
    login_required,
    login_url,
)
from app.cache.ratelimit import API_PER_KEY, APP_PER_USER, PAGES_PER_IP, limited
from app.errors import AppError, PlanLimitReached, RateLimited
from app.observability.requests import observe_requests
from app.observability.tracing import trace_requests
from app.routes import (
    account,
    billing,
    dashboard,
    deletion,
    health,
    ingest,
    login,
    organizations,
    security,
    sharing,
    sites,
    stats_api,
    tracker,
)
from app.services import Services
from app.settings import Settings
from app.web.security_headers import AUTHENTICATED_CACHE_CONTROL, security_headers
from app.web.static_assets import serve_static, static_url

APP_DIR = Path(__file__).resolve().parent
# Route modules with a login-free and a logged-in part; the login guard is applied here, once,
# and so are the rate limits (`app.cache.ratelimit`): each router's default, or a route's own.
# Ingest, Stripe's webhook, the tracker, static files and the probes stay outside both
# routers: never limited.
AREAS = (
    login,
    account,
    security,
    organizations,
    billing,
    sites,
    deletion,
    sharing,
    stats_api,
    dashboard,
)
API_KEY = "ApiKey"  # the OpenAPI security scheme of the Stats API


log = logging.getLogger(__name__)


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """The public web app. `services` defaults to ones built from `settings`."""
    services = services or Services(settings)

    async def close_services() -> None:
        await services.aclose()

    rate_limits = RateLimits(services)
    app = Litestar(
        route_handlers=[
            Router(
                "/",
                include_in_schema=False,
                route_handlers=[
                    ingest.route(services),
                    billing.stripe_webhook,
                    health.healthz,
                    health.readyz,
                    tracker.tracker_script,
                    serve_static,
                ],
            ),
            Router(
                "/",
                guards=[rate_limits],
                opt=limited(PAGES_PER_IP),
                include_in_schema=False,
                route_handlers=[route for area in AREAS for route in area.PUBLIC_ROUTES],
            ),
            Router(
                "/",
                guards=[login_required, rate_limits],
                opt=limited(APP_PER_USER),
                cache_control=AUTHENTICATED_CACHE_CONTROL,
                include_in_schema=False,
                route_handlers=[route for area in AREAS for route in area.PRIVATE_ROUTES],
            ),
            # The Stats API: a bearer key instead of a login, counted per key.
            Router(
                "/",
                guards=[ApiKeyRequired(services), rate_limits],
                opt=limited(API_PER_KEY),
                cache_control=AUTHENTICATED_CACHE_CONTROL,
                security=[{API_KEY: []}],
                exception_handlers={
                    ValidationException: _invalid_request,
                    RecursionError: _nested_too_deeply,
                },
                route_handlers=stats_api.API_ROUTES,
            ),
        ],
        dependencies={
            "services": Provide(lambda: services, use_cache=True, sync_to_thread=False),
            "user": Provide(current_user),
        },
        middleware=[WebAuthMiddleware(services)],
        template_config=TemplateConfig(
            directory=APP_DIR / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _configure_jinja(engine, settings.SECRET_KEY),
        ),
        exception_handlers={
            LoginRequired: _login_required,
            AppError: _app_error,
            RateLimited: _rate_limited,
            PlanLimitReached: _plan_limit,
            HTTPException: _http_error,
        },
        before_send=[security_headers(settings.trusted_networks)],
        after_exception=[_log_unhandled],
        on_shutdown=[close_services],
        openapi_config=_openapi(rate_limits),
        logging_config=None,  # logging is configured once, by the process (app.server.startup)
    )
    # Tracing outermost: the request's log line is written inside its span.
    return trace_requests(observe_requests(app), settings)


async def _log_unhandled(exc: Exception, scope: Any) -> None:
    """A 500's traceback in the log (the answers mapped above are expected and are not)."""
    if not isinstance(exc, (LoginRequired, AppError, HTTPException)):
        log.error("unhandled error on %s", scope.get("path", "?"), exc_info=exc)


def _openapi(rate_limits: RateLimits) -> OpenAPIConfig:
    """The Stats API's OpenAPI schema at `/api/schema/openapi.json` (the other routes are pages
    and stay out of it); no HTML viewer, which would load scripts from a CDN."""
    return OpenAPIConfig(
        title="Ursa Stats API",
        version="2",
        description="Plausible-compatible Stats API. See /api/docs for examples.",
        render_plugins=[JsonRenderPlugin()],
        components=Components(
            security_schemes={
                API_KEY: SecurityScheme(type="http", scheme="bearer", description="An API key")
            }
        ),
        openapi_router=Router(
            "/api/schema",
            guards=[rate_limits],
            opt=limited(PAGES_PER_IP),
            include_in_schema=False,
            route_handlers=[],
        ),
    )


def _invalid_request(request: Request[Any, Any, Any], exc: ValidationException) -> Response[object]:
    """A Stats API body or parameter of the wrong shape: 400 naming the field, as JSON."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    details = [
        f"{problem.get('key') or 'body'}: {problem.get('message', 'invalid')}"
        for problem in problems
        if isinstance(problem, dict)
    ]
    return _json_error(request, 400, {"error": "; ".join(details) or str(exc.detail)})


def _nested_too_deeply(request: Request[Any, Any, Any], exc: RecursionError) -> Response[object]:
    """A JSON body nested past the decoder's recursion limit (msgspec raises RecursionError)."""
    return _json_error(request, 400, {"error": "body: JSON nested too deeply"})


def _configure_jinja(engine: JinjaTemplateEngine, secret: str) -> None:
    engine.engine.filters["duration"] = format_duration

    def request_auth_of(context: jinja2.runtime.Context) -> RequestAuth | None:
        request = context.get("request")
        auth = request.scope["state"].get(STATE_KEY) if request is not None else None
        return auth if isinstance(auth, RequestAuth) else None

    @jinja2.pass_context
    def csrf_token(context: jinja2.runtime.Context) -> str:
        auth = request_auth_of(context)
        if auth is None:
            raise RuntimeError("a cookieless page rendered a form")
        return csrf_token_for(auth, secret)

    @jinja2.pass_context
    def current_user_id(context: jinja2.runtime.Context) -> int | None:
        auth = request_auth_of(context)
        return auth.user_id if auth is not None else None

    engine.engine.globals.update(
        csrf_token=csrf_token, current_user_id=current_user_id, static_url=static_url
    )


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _error_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """What every error answer carries: `no-store` when its route is behind the login (the
    logged-in router's `cache_control` covers what its handlers return, not its errors)."""
    handler = request.scope.get("route_handler")
    if handler is not None and login_required in handler.resolve_guards():
        return {"Cache-Control": AUTHENTICATED_CACHE_CONTROL.to_header()}
    return {}


def _json_error(
    request: Request[Any, Any, Any],
    status: int,
    body: dict[str, object],
    headers: dict[str, str] | None = None,
) -> Response[object]:
    """An error as JSON, which no browser may sniff into something else (HTML pages get
    `nosniff` from `app.web.security_headers`)."""
    headers = {**(headers or {}), **_error_headers(request), "X-Content-Type-Options": "nosniff"}
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


def _error_response(
    request: Request[Any, Any, Any], status: int, message: str, upgrade_url: str = ""
) -> Response[object]:
    if _wants_html(request) and not request.headers.get("hx-request"):
        context = {"status_code": status, "message": message, "upgrade_url": upgrade_url}
        return Template(  # type: ignore[return-value]
            "error.html", context=context, status_code=status, headers=_error_headers(request)
        )
    return _json_error(request, status, {"error": message})


def _login_required(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[object]:
    """To the login page, and back afterwards; htmx navigates the whole page there."""
    target = login_url(exc.next_url)
    if request.headers.get("hx-request"):
        page = urlsplit(request.headers.get("hx-current-url", ""))
        path = page.path + (f"?{page.query}" if page.query else "") if page.path else exc.next_url
        return Response(b"", status_code=401, headers={"HX-Redirect": login_url(path)})
    if _wants_html(request) or request.method == "GET":
        return Redirect(target)
    return _json_error(request, 401, {"error": "log in first"})


def _app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[object]:
    return _error_response(request, exc.status_code, str(exc))


def _plan_limit(request: Request[Any, Any, Any], exc: PlanLimitReached) -> Response[object]:
    """402: the page with the upgrade link for browsers; JSON naming the plan otherwise."""
    if _wants_html(request) and not request.headers.get("hx-request"):
        return _error_response(request, exc.status_code, str(exc), exc.upgrade_url)
    upgrade = str(request.base_url).rstrip("/") + exc.upgrade_url
    body: dict[str, object] = {"error": str(exc), "plan": exc.plan_code, "upgrade_url": upgrade}
    return _json_error(request, exc.status_code, body)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[object]:
    return _error_response(request, exc.status_code, exc.detail)


def _rate_limited(request: Request[Any, Any, Any], exc: RateLimited) -> Response[object]:
    """429 with `Retry-After`: a fragment for htmx, a page for browsers, JSON otherwise."""
    headers = {"Retry-After": str(exc.retry_after), **_error_headers(request)}
    context = {"status_code": exc.status_code, "message": str(exc)}
    if request.headers.get("hx-request"):
        name = "partials/rate_limited.html"
    elif _wants_html(request):
        name = "rate_limited.html"
    else:
        body = {"error": str(exc), "retry_after": exc.retry_after}
        return _json_error(request, exc.status_code, body, headers)
    return Template(  # type: ignore[return-value]
        name, context=context, status_code=exc.status_code, headers=headers
    )
