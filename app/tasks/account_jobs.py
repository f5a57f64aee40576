"""Jobs of account flows: verification, email-change, password-reset and security emails.

Tokens are minted here, in the worker, never passed as message arguments: a queued message
(which Redis keeps, and a failed one Dramatiq logs) names a user id, never a usable link. A
retried job mints a fresh token; the one it replaces was never delivered and simply expires.
An actor sends nothing when the user is gone (or, for verification, already verified).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import dramatiq

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.accounts.tokens import CHANGE_EMAIL, RESET_PASSWORD, VERIFY_EMAIL, mint
from app.models import User
from app.services import Services
from app.tasks.context import current, run_async
from app.tasks.mailing import deliver, email_actor


@dataclass(frozen=True)
class Recipient:
    address: str
    token: str = ""


async def _recipient(
    services: Services,
    user_id: int,
    purpose: str = "",
    email: str = "",
    *,
    only_unverified: bool = False,
) -> Recipient | None:
    """Where to write to (the user's email), with a new token of `purpose` if one is named."""
    async with services.sessions() as session:
        user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        return None
    if only_unverified and user.email_verified_at is not None:
        return None
    token = await mint(services.sessions, user, purpose, email) if purpose else ""
    return Recipient(user.email, token)


def _url(path: str) -> str:
    return f"{current().settings.BASE_URL}{path}"


@email_actor
def send_verification(user_id: int, next_path: str = "/") -> None:
    """The "confirm your email address" link (24 h) of a new, unverified account."""
    found = run_async(lambda s: _recipient(s, user_id, VERIFY_EMAIL, only_unverified=True))
    if found is None:
        return
    query = f"?next={quote(next_path, safe='/')}" if next_path != "/" else ""
    link = _url(f"/verify-email/{found.token}{query}")
    deliver("verify_email", found.address, {"verify_url": link})


@email_actor
def send_email_change(user_id: int, new_email: str) -> None:
    """The link (24 h) that moves the account to `new_email`, mailed to that new address."""
    found = run_async(lambda s: _recipient(s, user_id, CHANGE_EMAIL, new_email))
    if found is None:
        return
    context = {"confirm_url": _url(f"/verify-email/{found.token}"), "old_email": found.address}
    deliver("confirm_new_email", new_email, context)


@email_actor
def send_password_reset(user_id: int) -> None:
    """The password-reset link (1 h)."""
    found = run_async(lambda s: _recipient(s, user_id, RESET_PASSWORD))
    if found is None:
        return
    link = _url(f"/password/reset/{found.token}")
    deliver("password_reset", found.address, {"reset_url": link})


@email_actor
def send_password_changed(user_id: int) -> None:
    """The security notice after a password change or reset."""
    context = {"forgot_url": _url("/password/forgot"), "sessions_url": _url("/account/sessions")}
    _notify(user_id, "password_changed", context)


@email_actor
def send_email_changed(old_email: str, new_email: str) -> None:
    """To the address an account just left: which address it moved to, and what to do if the
    move was not its owner's doing."""
    context = {"new_email": new_email, "forgot_url": _url("/password/forgot")}
    deliver("email_changed", old_email, context)


@email_actor
def send_signup_existing(user_id: int) -> None:
    """To the owner of an address someone tried to sign up with: log in or reset instead."""
    _notify(
        user_id,
        "signup_existing",
        {"login_url": _url("/login"), "forgot_url": _url("/password/forgot")},
    )


def _notify(user_id: int, template: str, context: Mapping[str, object]) -> None:
    """Deliver a notice without a link token to the user's current address."""
    found = run_async(lambda s: _recipient(s, user_id))
    if found is not None:
        deliver(template, found.address, context)


ACTORS: tuple[dramatiq.Actor, ...] = (  # type: ignore[type-arg]
    send_verification,
    send_email_change,
    send_email_changed,
    send_password_reset,
    send_password_changed,
    send_signup_existing,
)
