"""Logging in and out."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts import login as login_checks
from app.accounts.request_auth import end_session, request_auth, safe_next, start_session
from app.accounts.web_sessions import Stage
from app.cache.ratelimit import LOGIN_PER_IP, limited
from app.routes import FORM
from app.routes.account import NOTICES
from app.services import Services


class LoginForm(Struct):
    email: str = ""
    password: str = ""
    next: str = "/"


@get("/login", name="login")
async def login_page(
    request: Request[Any, Any, Any], next: FromQuery[str] = "/", notice: FromQuery[str] = ""
) -> Template:
    if request_auth(request).user_id is not None:
        return Redirect(safe_next(next))  # type: ignore[return-value]
    context = {"next": safe_next(next), "email": "", "notice": NOTICES.get(notice, "")}
    return Template("auth/login.html", context=context)


@post("/login", name="login-submit", status_code=303, opt=limited(LOGIN_PER_IP))
async def login(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    data: Annotated[LoginForm, FORM],
) -> Template | Redirect:
    client = services.limiter.client_address(request)
    outcome = await login_checks.authenticate(services, data.email, data.password, client)
    if outcome.user is None:
        context = {"next": safe_next(data.next), "email": data.email, "error": outcome.error}
        return Template("auth/login.html", context=context, status_code=400)
    user = outcome.user
    if user.has_2fa:
        await start_session(request, services, user, Stage.SECOND_FACTOR)
        return Redirect(f"/login/2fa?next={quote(safe_next(data.next))}", status_code=303)
    session = await start_session(request, services, user, Stage.FULL)
    login_checks.notify_login(services, user, session)
    return Redirect(safe_next(data.next), status_code=303)


@post("/logout", name="logout", status_code=303)
async def logout(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Redirect:
    await end_session(request, services)
    return Redirect("/login", status_code=303)


PUBLIC_ROUTES = [login_page, login, logout]
PRIVATE_ROUTES: list[HTTPRouteHandler] = []
