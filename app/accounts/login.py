"""Checking a login: password verification that reveals nothing, the lockout, the sign-in email.

The lockout counts failures only, against the account and against the account at the client's
address; its rules are in docs/security.md ("Account lockout").
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from app.accounts.passwords import MAX_LENGTH, hash_password, needs_rehash, verify_password
from app.accounts.users import (
    get_user_by_email,
    hash_in_thread,
    store_password_hash,
)
from app.accounts.web_sessions import WebSession
from app.addresses.emails import normalize_email
from app.cache.ratelimit import (
    LOGIN_PER_ACCOUNT,
    LOGIN_PER_ACCOUNT_IP,
    TOTP_PER_ACCOUNT,
    account_at,
)
from app.errors import InvalidInput, RateLimited
from app.models import User
from app.services import Services
from app.store.jobs import enqueue

WRONG_CREDENTIALS = "That email and password do not match an account."
UNVERIFIED = "Confirm your email address first: follow the link in the email we sent you."


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    error: str = ""


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not the password of any account")


async def authenticate(services: Services, email: str, password: str, client: str) -> LoginOutcome:
    """Check an email and password from `client` (an address) under the lockout.

    Unknown emails cost the same argon2 verification as known ones, and get the same answer as
    a wrong password, so neither the reply nor its timing tells whether an account exists. With
    2FA the attempt stays counted as failed until `login_succeeded` after the code.
    """
    try:
        address = normalize_email(email)
    except InvalidInput:
        address = ""
    if address:
        await _admit(services, address, client)
    user = await get_user_by_email(services.sessions, address) if address else None
    stored = user.password_hash if user is not None else _dummy_hash()
    valid = await asyncio.to_thread(verify_password, stored, password[:MAX_LENGTH])
    if user is None or not valid or user.deleted_at is not None:
        return LoginOutcome(None, WRONG_CREDENTIALS)
    if user.email_verified_at is None:
        return LoginOutcome(None, UNVERIFIED)
    if needs_rehash(user.password_hash):
        await store_password_hash(services.sessions, user, await hash_in_thread(password))
    if not user.has_2fa:
        await login_succeeded(services, address, client)
    return LoginOutcome(user)


async def reauthenticate(
    services: Services, user: User, password: str, wrong: str, client: str
) -> None:
    """Ask a logged-in user for their password again (before changing email, password, 2FA, or
    deleting the account): raise `InvalidInput(wrong)` unless it is theirs. A wrong one is a
    failed login at the account from `client`, so these forms guess no faster than the login
    form; the right one resets the count like a login."""
    await _admit(services, user.email, client)
    valid = await asyncio.to_thread(verify_password, user.password_hash, password[:MAX_LENGTH])
    if not valid:
        raise InvalidInput(wrong)
    await login_succeeded(services, user.email, client)


async def count_login_failure(services: Services, email: str, client: str) -> int:
    """Count a failed login at the account `email` from `client`: 0 while this address may try
    again (the account under its limit, or the address without failures there), else the
    seconds until it may."""
    limiter = services.limiter
    account = await limiter.hit(LOGIN_PER_ACCOUNT, email)
    here = await limiter.hit(LOGIN_PER_ACCOUNT_IP, account_at(email, client))
    if account.allowed or here.allowed:
        return 0
    return min(account.retry_after, here.retry_after)


async def _admit(services: Services, email: str, client: str) -> None:
    """Count an attempt as failed before checking it; raise `RateLimited` when locked out.

    Counted first and cleared when it succeeds, so concurrent guesses cannot overtake the limit
    between the check and the count."""
    retry_after = await count_login_failure(services, email, client)
    if retry_after:
        raise RateLimited(retry_after)


async def login_succeeded(services: Services, email: str, client: str) -> None:
    """The login at `email` from `client` went through: its failure counts start over."""
    await services.limiter.reset(LOGIN_PER_ACCOUNT, email)
    await services.limiter.reset(LOGIN_PER_ACCOUNT_IP, account_at(email, client))


async def lockout_lifted(services: Services, email: str) -> None:
    """After a password reset by email link: the account's login and code failures start over
    (the guesses were at a password that no longer works, and every session has ended)."""
    await services.limiter.reset(LOGIN_PER_ACCOUNT, email)
    await services.limiter.reset(TOTP_PER_ACCOUNT, email)


def notify_login(services: Services, user: User, web_session: WebSession) -> None:
    """Queue the "new sign-in" security email (time, country, browser, link to sessions)."""
    when = dt.datetime.fromtimestamp(web_session.created_at, dt.UTC)
    context = {
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "country": web_session.country or "an unknown country",
        "agent": web_session.agent,
        "sessions_url": f"{services.settings.BASE_URL}/account/sessions",
    }
    enqueue("send_email", "login", user.email, context)
