"""Signing up, confirming the email address, resetting a password, account settings.

The logic lives in `app.accounts.flows`; these handlers parse, call one flow, and render. A form
the flow refuses (`ClientError`) is shown again with the reason and the refusal's status code.
Emailed links answer GET with a page and a button, and act on POST only: mail scanners that
fetch links must not use them up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts import api_keys, flows
from app.accounts.request_auth import request_auth, safe_next
from app.accounts.tokens import CHANGE_EMAIL, BadLink
from app.cache.ratelimit import (
    ACCOUNT_CHANGE_PER_USER,
    CREATE_PER_USER,
    RESET_PER_IP,
    SIGNUP_PER_IP,
    limited,
)
from app.errors import ClientError, Conflict, Forbidden, InvalidInput
from app.models import User
from app.routes import FORM
from app.services import Services

# What a form answer shows next to the form; a 429 goes to the app's rate-limit page instead.
REFUSALS = (InvalidInput, Forbidden)
AnyRequest = Request[Any, Any, Any]

# Where to go from a link that cannot be used: (url, label).
VERIFY_RETRY = ("/signup/resend", "Send a new confirmation link")
RESET_RETRY = ("/password/forgot", "Ask for a new reset link")
# Fixed messages shown after a redirect (`?notice=`): never text taken from the query string.
# The login page shows them too (`/login?notice=email-verified`, `deletion-cancelled`).
NOTICES = {
    "password-reset": "Your new password is saved. Log in with it.",
    "password-changed": "Your password was changed.",
    "email-link-sent": (
        "Check the inbox of your new address: we sent it a confirmation link (valid for 24 "
        "hours). Your email changes when you follow it."
    ),
    "email-changed": "Your email address was changed.",
    "email-verified": "Your email address is confirmed.",
    "deletion-cancelled": "The deletion of your account is cancelled. Log in to use it again.",
    "api-key-revoked": "The API key is revoked: requests with it are refused from now on.",
}


class SignupForm(Struct):
    email: str = ""
    password: str = ""
    next: str = "/"


class EmailForm(Struct):
    email: str = ""


class NextForm(Struct):
    next: str = "/"


class NewPasswordForm(Struct):
    password: str = ""


class PasswordChangeForm(Struct):
    current_password: str = ""
    new_password: str = ""
    end_other_sessions: str = ""  # a checkbox: "on" when ticked, absent when not


class ApiKeyForm(Struct):
    name: str = ""


class EmailChangeForm(Struct):
    current_password: str = ""
    email: str = ""


def _refused(template: str, exc: ClientError, **context: object) -> Template:
    return Template(template, context={**context, "error": str(exc)}, status_code=exc.status_code)


def _bad_link(exc: ClientError, retry_url: str, retry_label: str) -> Template:
    context = {"message": str(exc), "retry_url": retry_url, "retry_label": retry_label}
    return Template("account/bad_link.html", context=context, status_code=exc.status_code)


@dataclass(frozen=True)
class EmailFormFlow:
    """A form asking for an email by address only (resend the link, reset the password): the
    same redirect for any address, a form error for a malformed one. Its route declares the
    per-IP limit; the flow counts the per-address one."""

    flow: Callable[[Services, str], Awaitable[str]]
    template: str  # account/<template>.html
    sent: str  # where to go afterwards

    async def handle(self, services: Services, email: str) -> Template | Redirect:
        try:
            await self.flow(services, email)
        except REFUSALS as exc:
            return _refused(f"account/{self.template}.html", exc, email=email)
        return Redirect(self.sent, status_code=303)


RESEND = EmailFormFlow(flows.resend_verification, "resend", "/signup/sent")
FORGOT = EmailFormFlow(flows.request_reset, "forgot", "/password/forgot/sent")


# --- sign-up ----------------------------------------------------------------------------------


@get("/signup", name="signup")
async def signup_page(
    request: AnyRequest, services: NamedDependency[Services], next: FromQuery[str] = "/"
) -> Template | Redirect:
    if request_auth(request).user_id is not None:
        return Redirect(safe_next(next))
    context = {"next": safe_next(next), "email": "", "invite_only": services.settings.INVITE_ONLY}
    return Template("account/signup.html", context=context)


@post("/signup", name="signup-submit", status_code=303, opt=limited(SIGNUP_PER_IP))
async def signup(
    services: NamedDependency[Services], data: Annotated[SignupForm, FORM]
) -> Template | Redirect:
    try:
        await flows.sign_up(services, data.email, data.password, data.next)
    except REFUSALS as exc:
        return _refused(
            "account/signup.html",
            exc,
            email=data.email,
            next=safe_next(data.next),
            invite_only=services.settings.INVITE_ONLY,
        )
    return Redirect("/signup/sent", status_code=303)


@get("/signup/sent", name="signup-sent")
async def signup_sent() -> Template:
    return Template("account/check_inbox.html", context={"kind": "signup"})


@get("/signup/resend", name="signup-resend")
async def resend_page() -> Template:
    return Template("account/resend.html", context={"email": ""})


@post("/signup/resend", name="signup-resend-submit", status_code=303, opt=limited(SIGNUP_PER_IP))
async def resend(
    services: NamedDependency[Services], data: Annotated[EmailForm, FORM]
) -> Template | Redirect:
    return await RESEND.handle(services, data.email)


# --- email links ------------------------------------------------------------------------------


@get("/verify-email/{token:str}", name="verify-email")
async def verify_page(
    services: NamedDependency[Services], token: FromPath[str], next: FromQuery[str] = "/"
) -> Template:
    try:
        found = await flows.check_link(services, token, flows.EMAIL_LINKS)
    except BadLink as exc:
        return _bad_link(exc, *VERIFY_RETRY)
    context = {
        "token": token,
        "next": safe_next(next),
        "email": found.email,
        "change": found.purpose == CHANGE_EMAIL,
    }
    return Template("account/verify.html", context=context)


@post("/verify-email/{token:str}", name="verify-email-submit", status_code=303)
async def verify(
    request: AnyRequest,
    services: NamedDependency[Services],
    token: FromPath[str],
    data: Annotated[NextForm, FORM],
) -> Template | Redirect:
    try:
        used = await flows.confirm_email(services, token)
    except (BadLink, Conflict) as exc:
        return _bad_link(exc, *VERIFY_RETRY)
    notice = "email-changed" if used.token.purpose == CHANGE_EMAIL else "email-verified"
    if request_auth(request).user_id == used.user.id:
        return Redirect(f"/account?notice={notice}", status_code=303)
    return Redirect(
        f"/login?next={quote(safe_next(data.next), safe='/')}&notice={notice}", status_code=303
    )


# --- password reset ---------------------------------------------------------------------------


@get("/password/forgot", name="password-forgot")
async def forgot_page() -> Template:
    return Template("account/forgot.html", context={"email": ""})


@post("/password/forgot", name="password-forgot-submit", status_code=303, opt=limited(RESET_PER_IP))
async def forgot(
    services: NamedDependency[Services], data: Annotated[EmailForm, FORM]
) -> Template | Redirect:
    return await FORGOT.handle(services, data.email)


@get("/password/forgot/sent", name="password-forgot-sent")
async def forgot_sent() -> Template:
    return Template("account/check_inbox.html", context={"kind": "reset"})


@get("/password/reset/{token:str}", name="password-reset")
async def reset_page(services: NamedDependency[Services], token: FromPath[str]) -> Template:
    try:
        await flows.check_link(services, token, flows.RESET_LINKS)
    except BadLink as exc:
        return _bad_link(exc, *RESET_RETRY)
    return Template("account/reset.html", context={"token": token})


@post("/password/reset/{token:str}", name="password-reset-submit", status_code=303)
async def reset(
    services: NamedDependency[Services],
    token: FromPath[str],
    data: Annotated[NewPasswordForm, FORM],
) -> Template | Redirect:
    try:
        await flows.reset_password(services, token, data.password)
    except BadLink as exc:
        return _bad_link(exc, *RESET_RETRY)
    except InvalidInput as exc:
        return _refused("account/reset.html", exc, token=token)
    return Redirect("/login?notice=password-reset", status_code=303)


# --- account settings -------------------------------------------------------------------------


async def _settings_page(
    services: Services, user: User, status_code: int = 200, **context: object
) -> Template:
    values = {
        "notice": "",
        "password_error": "",
        "email_error": "",
        "new_email": "",
        "api_key_error": "",
        "new_api_key": None,
        **context,
    }
    assert user.id is not None
    keys = await api_keys.list_keys(services.sessions, user.id)
    return Template(
        "account/settings.html",
        context={"email": user.email, "api_keys": keys, **values},
        status_code=status_code,
    )


@get("/account", name="account")
async def account_page(
    services: NamedDependency[Services], user: NamedDependency[User], notice: FromQuery[str] = ""
) -> Template:
    return await _settings_page(services, user, notice=NOTICES.get(notice, ""))


@post(
    "/account/password",
    name="account-password",
    status_code=303,
    opt=limited(ACCOUNT_CHANGE_PER_USER),
)
async def change_password(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[PasswordChangeForm, FORM],
) -> Template | Redirect:
    try:
        await flows.change_password(
            request,
            services,
            user,
            data.current_password,
            data.new_password,
            end_other_sessions=bool(data.end_other_sessions),
        )
    except REFUSALS as exc:
        return await _settings_page(services, user, exc.status_code, password_error=str(exc))
    return Redirect("/account?notice=password-changed", status_code=303)


@post(
    "/account/email",
    name="account-email",
    status_code=303,
    opt=limited(ACCOUNT_CHANGE_PER_USER),
)
async def change_email(
    request: AnyRequest,
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[EmailChangeForm, FORM],
) -> Template | Redirect:
    try:
        client = services.limiter.client_address(request)
        await flows.request_email_change(services, user, data.current_password, data.email, client)
    except REFUSALS as exc:
        return await _settings_page(
            services, user, exc.status_code, email_error=str(exc), new_email=data.email
        )
    return Redirect("/account?notice=email-link-sent", status_code=303)


@post(
    "/account/api-keys",
    name="account-api-key-create",
    status_code=200,
    opt=limited(CREATE_PER_USER),
)
async def create_api_key(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[ApiKeyForm, FORM],
) -> Template:
    """A new key, shown on the page this once (never stored, never in a URL)."""
    try:
        key, secret = await api_keys.create_key(services.sessions, user, data.name)
    except REFUSALS as exc:
        return await _settings_page(services, user, exc.status_code, api_key_error=str(exc))
    return await _settings_page(
        services, user, 201, new_api_key={"name": key.name, "secret": secret}
    )


@post(
    "/account/api-keys/{key_id:int}/revoke",
    name="account-api-key-revoke",
    status_code=303,
)
async def revoke_api_key(
    services: NamedDependency[Services], user: NamedDependency[User], key_id: FromPath[int]
) -> Redirect:
    assert user.id is not None
    await api_keys.revoke_key(services.sessions, user.id, key_id)
    return Redirect("/account?notice=api-key-revoked", status_code=303)


PUBLIC_ROUTES = [
    signup_page,
    signup,
    signup_sent,
    resend_page,
    resend,
    verify_page,
    verify,
    forgot_page,
    forgot,
    forgot_sent,
    reset_page,
    reset,
]
PRIVATE_ROUTES = [account_page, change_password, change_email, create_api_key, revoke_api_key]
