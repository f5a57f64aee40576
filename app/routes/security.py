"""Two-factor authentication, the second login step, and the sessions page.

The logic is in `app.accounts.two_factor` and `app.accounts.web_sessions_page`; these handlers
parse the form, call one function and render. A wrong password or code re-renders the form
with a 400 and the reason; a rate limit answers 429 (see `app.main`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts import two_factor
from app.accounts.login import notify_login
from app.accounts.request_auth import end_session, request_auth, rotate_session, safe_next
from app.accounts.web_sessions import Stage, WebSession
from app.accounts.web_sessions_page import session_rows
from app.cache.ratelimit import LOGIN_PER_IP, limited
from app.errors import InvalidInput, NotFound
from app.models import User
from app.routes import FORM
from app.services import Services

AnyRequest = Request[Any, Any, Any]

# `?done=` values of the security and sessions pages, and what they say.
NOTICES = {
    "2fa-off": "Two-factor authentication is off. Your recovery codes no longer work.",
    "revoked": "That session has been signed out.",
    "revoked-others": "All your other sessions have been signed out.",
}


class PasswordForm(Struct):
    password: str = ""


class ConfirmForm(Struct):
    code: str = ""
    log_out_others: str = ""  # "on" when the checkbox is ticked (it is by default)


class DisableForm(Struct):
    password: str = ""
    code: str = ""


class SecondFactorForm(Struct):
    code: str = ""
    next: str = "/"
    method: str = ""


# --- the security page and 2FA settings --------------------------------------------------------


async def _security_page(
    services: Services, user: User, *, failed: tuple[str, str] = ("", ""), done: str = ""
) -> Template:
    """The security page; `failed` names the form that failed and why (then it is a 400)."""
    form, error = failed
    unused = await two_factor.unused_recovery_codes(services, user.id) if user.id else 0
    context = {
        "user": user,
        "unused_codes": unused,
        "failed_form": form,
        "error": error,
        "notice": NOTICES.get(done, ""),
    }
    return Template("security/index.html", context=context, status_code=400 if error else 200)


def _codes_page(codes: list[str], *, first_time: bool) -> Template:
    context = {"codes": codes, "first_time": first_time}
    return Template("security/recovery_codes.html", context=context, status_code=200)


def _setup_page(user: User, error: str = "") -> Template:
    assert user.totp_secret is not None
    enrollment = two_factor.enrollment(user.totp_secret, user.email)
    context = {"enrollment": enrollment, "email": user.email, "error": error}
    return Template("security/setup.html", context=context, status_code=400 if error else 200)


@get("/account/security", name="security")
async def security_page(
    services: NamedDependency[Services], user: NamedDependency[User], done: FromQuery[str] = ""
) -> Template:
    return await _security_page(services, user, done=done)


@post("/account/2fa/setup", name="2fa-setup")
async def setup(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[PasswordForm, FORM],
) -> Template:
    try:
        await two_factor.begin_setup(services, user, data.password, _client(request, services))
    except InvalidInput as error:
        return await _security_page(services, user, failed=("setup", str(error)))
    return _setup_page(user)


@post("/account/2fa/confirm", name="2fa-confirm")
async def confirm(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[ConfirmForm, FORM],
) -> Template:
    try:
        codes = await two_factor.confirm_setup(services, user, data.code)
    except InvalidInput as error:
        if user.totp_secret is not None and not user.has_2fa:
            return _setup_page(user, str(error))
        return await _security_page(services, user, failed=("setup", str(error)))
    session = await rotate_session(request, services)
    if data.log_out_others:
        await services.web_sessions.revoke_all(_id(user), keep=session)
    return _codes_page(codes, first_time=True)


@post("/account/2fa/disable", name="2fa-disable")
async def disable(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[DisableForm, FORM],
) -> Template | Redirect:
    try:
        await two_factor.disable(
            services, user, data.password, data.code, _client(request, services)
        )
    except InvalidInput as error:
        return await _security_page(services, user, failed=("disable", str(error)))
    await rotate_session(request, services)
    return Redirect("/account/security?done=2fa-off", status_code=303)


@post("/account/2fa/recovery-codes", name="2fa-recovery-codes")
async def new_recovery_codes(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[PasswordForm, FORM],
) -> Template:
    try:
        codes = await two_factor.regenerate_recovery_codes(
            services, user, data.password, _client(request, services)
        )
    except InvalidInput as error:
        return await _security_page(services, user, failed=("codes", str(error)))
    return _codes_page(codes, first_time=False)


# --- the second login step ---------------------------------------------------------------------


def _half_session(request: AnyRequest) -> WebSession | None:
    """The session of a login waiting for its second factor, if this request has one."""
    session = request_auth(request).session
    return session if session is not None and session.stage is Stage.SECOND_FACTOR else None


def _second_factor_page(next_url: str, method: str, error: str = "") -> Template:
    context = {"next": safe_next(next_url), "recovery": method == "recovery", "error": error}
    return Template("security/login_2fa.html", context=context, status_code=400 if error else 200)


@get("/login/2fa", name="login-2fa")
async def second_factor_page(
    request: AnyRequest, next: FromQuery[str] = "/", method: FromQuery[str] = ""
) -> Template | Redirect:
    if _half_session(request) is None:
        return Redirect("/login")
    return _second_factor_page(next, method)


@post("/login/2fa", name="login-2fa-submit", status_code=303, opt=limited(LOGIN_PER_IP))
async def second_factor(
    request: AnyRequest,
    services: NamedDependency[Services],
    data: Annotated[SecondFactorForm, FORM],
) -> Template | Redirect:
    half = _half_session(request)
    if half is None:
        return Redirect("/login", status_code=303)
    user = await two_factor.pending_user(services, half)
    if user is None:
        await end_session(request, services)
        return Redirect("/login", status_code=303)
    try:
        await two_factor.complete_login(services, user, data.code, _client(request, services))
    except InvalidInput as error:
        return _second_factor_page(data.next, data.method, str(error))
    session = await rotate_session(request, services, Stage.FULL)
    notify_login(services, user, session)
    return Redirect(safe_next(data.next), status_code=303)


# --- the sessions page -------------------------------------------------------------------------


@get("/account/sessions", name="sessions")
async def sessions_page(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    done: FromQuery[str] = "",
) -> Template:
    sessions = await services.web_sessions.list_for_user(_id(user))
    rows = session_rows(sessions, request_auth(request).session, time.time())
    context = {"rows": rows, "notice": NOTICES.get(done, "")}
    return Template("security/sessions.html", context=context)


@post("/account/sessions/{public_id:str}/revoke", name="session-revoke", status_code=303)
async def revoke_session(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    public_id: FromPath[str],
) -> Redirect:
    current = request_auth(request).session
    if current is not None and current.public_id == public_id:
        await end_session(request, services)
        return Redirect("/login", status_code=303)
    if not await services.web_sessions.revoke(_id(user), public_id):
        raise NotFound("That session has already ended, or it is not one of yours.")
    return Redirect("/account/sessions?done=revoked", status_code=303)


@post("/account/sessions/revoke-others", name="sessions-revoke-others", status_code=303)
async def revoke_other_sessions(
    request: AnyRequest, services: NamedDependency[Services], user: NamedDependency[User]
) -> Redirect:
    await services.web_sessions.revoke_all(_id(user), keep=request_auth(request).session)
    return Redirect("/account/sessions?done=revoked-others", status_code=303)


def _client(request: AnyRequest, services: Services) -> str:
    return services.limiter.client_address(request)


def _id(user: User) -> int:
    assert user.id is not None
    return user.id


PUBLIC_ROUTES = [second_factor_page, second_factor]  # no login needed
PRIVATE_ROUTES = [  # behind the login guard (see app.main)
    security_page,
    setup,
    confirm,
    disable,
    new_recovery_codes,
    sessions_page,
    revoke_session,
    revoke_other_sessions,
]
