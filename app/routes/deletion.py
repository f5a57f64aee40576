"""Deleting an account: request, cancel, and what happens meanwhile.

The logic lives in `app.accounts.deletion`. The emailed cancel link answers GET with a page and a
button, and cancels on POST only: mail scanners that fetch links must not use them up.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts import deletion
from app.accounts.request_auth import end_session
from app.cache.ratelimit import ACCOUNT_CHANGE_PER_USER, limited
from app.errors import ClientError, InvalidInput
from app.models import User
from app.routes import FORM
from app.services import Services

# Public pages about one account (the cancel link holds a token): no cache keeps them.
NO_STORE = CacheControlHeader(no_store=True)


class DeleteForm(Struct):
    current_password: str = ""


async def _request_page(
    services: Services, user: User, error: str = "", status_code: int = 200
) -> Template:
    plan = await deletion.deletion_plan(services, user)
    context = {"plan": plan, "email": user.email, "error": error}
    return Template("deletion/request.html", context=context, status_code=status_code)


def _bad_link(exc: ClientError) -> Template:
    return Template(
        "deletion/bad_link.html", context={"message": str(exc)}, status_code=exc.status_code
    )


@get("/account/delete", name="account-delete")
async def request_page(
    services: NamedDependency[Services], user: NamedDependency[User]
) -> Template:
    return await _request_page(services, user)


@post(
    "/account/delete",
    name="account-delete-submit",
    status_code=303,
    opt=limited(ACCOUNT_CHANGE_PER_USER),
)
async def request_deletion(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[DeleteForm, FORM],
) -> Template | Redirect:
    try:
        client = services.limiter.client_address(request)
        await deletion.request_deletion(services, user, data.current_password, client)
    except InvalidInput as exc:
        return await _request_page(services, user, str(exc), exc.status_code)
    await end_session(request, services)
    return Redirect("/account/delete/scheduled", status_code=303)


@get("/account/delete/scheduled", name="account-delete-scheduled", cache_control=NO_STORE)
async def scheduled_page() -> Template:
    return Template("deletion/scheduled.html", context={"hours": deletion.GRACE_HOURS})


@get("/account/delete/cancel/{token:str}", name="account-delete-cancel", cache_control=NO_STORE)
async def cancel_page(services: NamedDependency[Services], token: FromPath[str]) -> Template:
    try:
        deletion_time = await deletion.check_cancel_link(services, token)
    except ClientError as exc:
        return _bad_link(exc)
    context = {"token": token, "deletion_time": deletion_time}
    return Template("deletion/cancel.html", context=context)


@post(
    "/account/delete/cancel/{token:str}",
    name="account-delete-cancel-submit",
    status_code=303,
    cache_control=NO_STORE,
)
async def cancel(services: NamedDependency[Services], token: FromPath[str]) -> Template | Redirect:
    try:
        await deletion.cancel_deletion(services, token)
    except ClientError as exc:
        return _bad_link(exc)
    return Redirect("/login?notice=deletion-cancelled", status_code=303)


PUBLIC_ROUTES: list[HTTPRouteHandler] = [scheduled_page, cancel_page, cancel]  # no login needed
PRIVATE_ROUTES: list[HTTPRouteHandler] = [request_page, request_deletion]  # behind the login guard
