"""`create_app(settings)` builds the Litestar app; wiring only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.errors import AppError, RateLimited
from app.routes import dashboard, health, ingest, tracker
from app.security_headers import security_headers
from app.services import Services
from app.settings import Settings

APP_DIR = Path(__file__).resolve().parent
STATIC_MAX_AGE_SECONDS = 3600


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """The public web app. `services` defaults to ones built from `settings`."""
    services = services or Services(settings)

    async def close_services() -> None:
        await services.aclose()

    return Litestar(
        route_handlers=[
            ingest.route(services),
            health.healthz,
            health.readyz,
            tracker.tracker_script,
            create_static_files_router(
                "/static",
                directories=[APP_DIR / "static"],
                cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE_SECONDS, public=True),
            ),
            dashboard.home,
            dashboard.dashboard,
            dashboard.card,
        ],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        template_config=TemplateConfig(
            directory=APP_DIR / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=_configure_jinja,
        ),
        exception_handlers={
            AppError: _app_error,
            RateLimited: _rate_limited,
            HTTPException: _http_error,
        },
        before_send=[security_headers(settings.trusted_networks)],
        on_shutdown=[close_services],
        openapi_config=None,
        logging_config=None,  # logging is configured once, by the process (app.runtime)
    )


def _configure_jinja(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["duration"] = format_duration


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


def _error_response(request: Request[Any, Any, Any], status: int, message: str) -> Response[object]:
    if _wants_html(request) and not request.headers.get("hx-request"):
        return Template(  # type: ignore[return-value]
            "error.html", context={"status_code": status, "message": message}, status_code=status
        )
    return Response({"error": message}, status_code=status, media_type=MediaType.JSON)


def _app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[object]:
    return _error_response(request, exc.status_code, str(exc))


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[object]:
    return _error_response(request, exc.status_code, exc.detail)


def _rate_limited(request: Request[Any, Any, Any], exc: RateLimited) -> Response[object]:
    """429 with `Retry-After`: a fragment for htmx, a page for browsers, JSON otherwise."""
    headers = {"Retry-After": str(exc.retry_after)}
    context = {"status_code": exc.status_code, "message": str(exc)}
    if request.headers.get("hx-request"):
        name = "partials/rate_limited.html"
    elif _wants_html(request):
        name = "rate_limited.html"
    else:
        body = {"error": str(exc), "retry_after": exc.retry_after}
        return Response(
            body, status_code=exc.status_code, headers=headers, media_type=MediaType.JSON
        )
    return Template(  # type: ignore[return-value]
        name, context=context, status_code=exc.status_code, headers=headers
    )
