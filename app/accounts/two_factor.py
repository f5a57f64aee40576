"""Two-factor authentication: TOTP enrolment, second-factor checks, recovery codes, staff guard.

A TOTP code is accepted once (`_CLAIM_STEP_SCRIPT`); wrong codes count against
`TOTP_PER_ACCOUNT`, and at login also as a failed login (`app.accounts.login`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pyotp
import segno
import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from redis.exceptions import RedisError
from sqlmodel import col, delete, func, select

from app.accounts.login import count_login_failure, login_succeeded, reauthenticate
from app.accounts.request_auth import LoginRequired, request_auth
from app.accounts.web_sessions import WebSession
from app.cache.ratelimit import TOTP_PER_ACCOUNT
from app.errors import Conflict, Forbidden, InvalidInput, Unavailable
from app.models import RecoveryCode, User
from app.models.columns import utcnow
from app.services import Services
from app.store import keys

ISSUER = "Ursa"
# Codes of the previous and the next 30-second step are accepted too (clock drift).
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Crockford's base32: no i, l, o, u, so a code read aloud or from paper is unambiguous.
# 10 characters of 32 = 50 bits per code.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_HALF_LENGTH = 5
_CROCKFORD_ALIASES = str.maketrans({"i": "1", "l": "1", "o": "0"})
_TOTP_CODE = re.compile(r"[0-9]{6}")

REAUTH_FAILED = "That is not your current password."
WRONG_CODE = (
    "That code is not valid. Enter the current 6-digit code from your authenticator app, "
    "or one of your unused recovery codes."
)
CODE_ALREADY_USED = (
    "That code has already been used. Wait for your authenticator app to show a new one."
)
WRONG_SETUP_CODE = (
    "That code does not match. Check that your authenticator app shows Ursa and enter the "
    "6-digit code it shows now."
)
NO_PENDING_SETUP = "Start again: turn on two-factor authentication from the security page."
TURN_ON_FOR_STAFF = (
    "Staff pages need two-factor authentication. Turn it on at /account/security, then try again."
)

# The time step of the last accepted code is kept per user (`ursa:totp-step:<user id>`, with a
# TTL longer than the validity window), and a code of that step or an earlier one is refused, so
# a code seen over someone's shoulder cannot be replayed. The key lives in the sessions' Redis
# (no eviction): the login needs that Redis anyway.
# KEYS[1]: the user's last accepted step; ARGV[1]: this step; ARGV[2]: TTL in seconds.
# 1 when the step is newer and now recorded, 0 when it was already used.
_CLAIM_STEP_SCRIPT = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Enrollment:
    """What the setup page shows: the secret as text, its otpauth URI and the QR code."""

    secret: str
    uri: str
    qr_data_uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type into an app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


# --- pure helpers ------------------------------------------------------------------------------


def enrollment(secret: str, email: str) -> Enrollment:
    """The otpauth URI of `secret` for `email` (issuer "Ursa") and its QR code as an SVG."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", border=4, omitsize=True, xmldecl=False)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Enrollment(secret, uri, f"data:image/svg+xml;base64,{encoded}")


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code `code` is, within the validity window; None if none is."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    if not _TOTP_CODE.fullmatch(code):
        return None
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        moment = now + offset * totp.interval
        if totp.verify(code, for_time=moment):
            return totp.timecode(moment)
    return None


def new_recovery_code() -> str:
    """A random recovery code such as `7k2mq-x9d4r` (50 bits)."""
    chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(2 * RECOVERY_HALF_LENGTH))
    return f"{chars[:RECOVERY_HALF_LENGTH]}-{chars[RECOVERY_HALF_LENGTH:]}"


def normalize_recovery_code(raw: str) -> str:
    """Lowercase, without spaces or dashes, Crockford look-alikes (i, l, o) mapped to digits."""
    cleaned = re.sub(r"[\s-]", "", raw.lower()).translate(_CROCKFORD_ALIASES)
    return cleaned if len(cleaned) == 2 * RECOVERY_HALF_LENGTH else ""


def hash_recovery_code(code: str) -> str:
    """The stored form of a recovery code: the SHA-256 of its normalised text (the codes are
    random, 50 bits, so a fast hash is enough)."""
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()


# --- checks ------------------------------------------------------------------------------------


async def pending_user(services: Services, web_session: WebSession) -> User | None:
    """The live user with 2FA on whom a half-way (password checked) session belongs to."""
    async with services.sessions() as session:
        user = await session.get(User, web_session.user_id)
    return user if user is not None and user.deleted_at is None and user.has_2fa else None


async def check_password(services: Services, user: User, password: str, client: str) -> None:
    """Re-authentication before a 2FA change: a wrong password is a failed login (`login`)."""
    await reauthenticate(services, user, password, REAUTH_FAILED, client)


async def check_second_factor(services: Services, user: User, code: str) -> None:
    """Accept a current, unused TOTP code or an unused recovery code (then used up).

    Raises `RateLimited` after too many wrong codes and `InvalidInput` for a wrong code. The
    attempt counts before the check; an accepted code clears the count.
    """
    await services.limiter.enforce(TOTP_PER_ACCOUNT, user.email)
    if user.totp_secret is None or user.totp_enabled_at is None:
        raise InvalidInput(WRONG_CODE)
    step = matching_step(user.totp_secret, code, time.time())
    if step is None:
        if not await _use_recovery_code(services, _user_id(user), code):
            raise InvalidInput(WRONG_CODE)
    elif not await _claim_step(services, _user_id(user), step):
        raise InvalidInput(CODE_ALREADY_USED)
    await services.limiter.reset(TOTP_PER_ACCOUNT, user.email)


async def complete_login(services: Services, user: User, code: str, client: str) -> None:
    """The second login step from `client`: `check_second_factor`, a wrong code counted as a
    failed login too, the accepted one resetting the login counts."""
    try:
        await check_second_factor(services, user, code)
    except InvalidInput:
        await count_login_failure(services, user.email, client)
        raise
    await login_succeeded(services, user.email, client)


async def _claim_step(services: Services, user_id: int, step: int) -> bool:
    """Record `step` as the user's last accepted one; False if it (or a later one) was used."""
    ttl = (2 * VALID_WINDOW + 2) * 30
    try:
        claimed = await services.redis.eval(
            _CLAIM_STEP_SCRIPT, 1, f"{keys.TOTP_STEP}{user_id}", step, ttl
        )
    except RedisError as exc:
        raise Unavailable("Sign-in checks are unavailable; try again shortly") from exc
    return bool(claimed)


async def _use_recovery_code(services: Services, user_id: int, code: str) -> bool:
    """Mark one unused recovery code of the user as used; False if `code` is none of them."""
    if not normalize_recovery_code(code):
        return False
    statement = (
        sa.update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == hash_recovery_code(code),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    async with services.sessions() as session:
        result = await session.exec(statement)
        await session.commit()
    return bool(result.rowcount == 1)


# --- changes -----------------------------------------------------------------------------------


async def begin_setup(services: Services, user: User, password: str, client: str) -> Enrollment:
    """After the password: a new secret, stored but not in force until `confirm_setup`
    (`totp_enabled_at` stays None), so a half-finished setup locks nobody out."""
    if user.has_2fa:
        raise Conflict("Two-factor authentication is already on.")
    await check_password(services, user, password, client)
    secret = pyotp.random_base32()
    await _update_user(services, user, totp_secret=secret, totp_enabled_at=None)
    return enrollment(secret, user.email)


async def confirm_setup(services: Services, user: User, code: str) -> list[str]:
    """Put the pending secret in force if `code` is one of its current codes.

    Returns the new recovery codes, in plain text for the only time.
    """
    if user.has_2fa or user.totp_secret is None:
        raise InvalidInput(NO_PENDING_SETUP)
    step = matching_step(user.totp_secret, code, time.time())
    if step is None:
        raise InvalidInput(WRONG_SETUP_CODE)
    await _claim_step(services, _user_id(user), step)  # this code cannot log in again
    await _update_user(services, user, totp_enabled_at=utcnow())
    return await replace_recovery_codes(services, _user_id(user))


async def disable(services: Services, user: User, password: str, code: str, client: str) -> None:
    """Turn 2FA off, after the password and a current code (or a recovery code)."""
    if not user.has_2fa:
        raise Conflict("Two-factor authentication is already off.")
    await check_password(services, user, password, client)
    await check_second_factor(services, user, code)
    await _update_user(services, user, totp_secret=None, totp_enabled_at=None)
    async with services.sessions() as session:
        await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
        await session.commit()


async def regenerate_recovery_codes(
    services: Services, user: User, password: str, client: str
) -> list[str]:
    """New recovery codes (the old ones stop working), after the password."""
    if not user.has_2fa:
        raise InvalidInput("Turn on two-factor authentication first.")
    await check_password(services, user, password, client)
    return await replace_recovery_codes(services, _user_id(user))


async def replace_recovery_codes(services: Services, user_id: int) -> list[str]:
    """Delete the user's recovery codes and store the hashes of new ones; the new codes."""
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    async with services.sessions() as session, session.begin():
        await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
        session.add_all(
            RecoveryCode(user_id=user_id, code_hash=hash_recovery_code(code)) for code in codes
        )
    return codes


async def unused_recovery_codes(services: Services, user_id: int) -> int:
    """How many of the user's recovery codes are still unused."""
    query = select(func.count()).where(
        col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None)
    )
    async with services.sessions() as session:
        return int((await session.exec(query)).one())


async def _update_user(services: Services, user: User, **fields: Any) -> None:
    """Write `fields` to the user's row, and to `user` (a detached copy) too."""
    async with services.sessions() as session:
        row = await session.get(User, _user_id(user))
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
            setattr(user, name, value)
        session.add(row)
        await session.commit()


def _user_id(user: User) -> int:
    assert user.id is not None
    return user.id


# --- the staff guard ---------------------------------------------------------------------------


async def staff_with_2fa(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard of the admin section: a full login of a staff user who has 2FA on.

    Anonymous (or half way through 2FA) → the login page; not staff → 404, so the section is
    not revealed; staff without 2FA → 403 saying where to turn it on.
    """
    user_id = request_auth(connection).user_id
    user = await _load_user(connection, handler, user_id) if user_id is not None else None
    if user is None or user.deleted_at is not None:
        path = connection.scope["path"]
        query = connection.scope.get("query_string", b"").decode()
        raise LoginRequired(f"{path}?{query}" if query else path)
    if not user.is_staff:
        raise NotFoundException(f"no page at {connection.scope['path']}")
    if not user.has_2fa:
        raise Forbidden(TURN_ON_FOR_STAFF)


async def _load_user(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, user_id: int
) -> User | None:
    """The user, read through the app's `services` dependency (guards get no injection)."""
    services: Services = await handler.resolve_dependencies()["services"]()
    async with services.sessions() as session:
        return await session.get(User, user_id)
