"""Checking a login: password verification that reveals nothing, and the sign-in email."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from app.accounts import get_user_by_email, hash_in_thread, normalize_email, store_password_hash
from app.errors import InvalidInput
from app.models import User
from app.passwords import MAX_LENGTH, hash_password, needs_rehash, verify_password
from app.ratelimit import LOGIN_PER_ACCOUNT
from app.services import Services
from app.tasks.actors import send_email
from app.websessions import WebSession

WRONG_CREDENTIALS = "That email and password do not match an account."
UNVERIFIED = "Confirm your email address first: follow the link in the email we sent you."


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    error: str = ""


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not the password of any account")


async def authenticate(services: Services, email: str, password: str) -> LoginOutcome:
    """Check an email and password; count the attempt against the account's rate limit.

    Unknown emails cost the same argon2 verification as known ones, and get the same answer as
    a wrong password, so neither the reply nor its timing tells whether an account exists.
    """
    try:
        address = normalize_email(email)
    except InvalidInput:
        address = ""
    if address:
        await services.limiter.enforce(LOGIN_PER_ACCOUNT, address)
    user = await get_user_by_email(services.sessions, address) if address else None
    stored = user.password_hash if user is not None else _dummy_hash()
    valid = await asyncio.to_thread(verify_password, stored, password[:MAX_LENGTH])
    if user is None or not valid or user.deleted_at is not None:
        return LoginOutcome(None, WRONG_CREDENTIALS)
    if user.email_verified_at is None:
        return LoginOutcome(None, UNVERIFIED)
    if needs_rehash(user.password_hash):
        await store_password_hash(services.sessions, user, await hash_in_thread(password))
    return LoginOutcome(user)


async def reauthenticate(services: Services, user: User, password: str, wrong: str) -> None:
    """Ask a logged-in user for their password again (before changing email, password, 2FA, or
    deleting the account): raise `InvalidInput(wrong)` unless it is theirs. The attempt counts
    against the account's login limit, so these forms guess no faster than the login form."""
    await services.limiter.enforce(LOGIN_PER_ACCOUNT, user.email)
    valid = await asyncio.to_thread(verify_password, user.password_hash, password[:MAX_LENGTH])
    if not valid:
        raise InvalidInput(wrong)


def notify_login(services: Services, user: User, web_session: WebSession) -> None:
    """Queue the "new sign-in" security email (time, country, browser, link to sessions)."""
    when = dt.datetime.fromtimestamp(web_session.created_at, dt.UTC)
    context = {
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "country": web_session.country or "an unknown country",
        "agent": web_session.agent,
        "sessions_url": f"{services.settings.BASE_URL}/account/sessions",
    }
    send_email.send("login", user.email, context)
