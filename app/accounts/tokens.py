"""Single-use, expiring links mailed to a user: minting them, checking them, using them up.

A token is 32 random bytes (URL-safe base64) that exists only in the emailed link; the
`account_tokens` row holds its SHA-256 (`hash_token`), so a database leak yields no usable link.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.errors import ClientError
from app.models import AccountToken, User, hash_token
from app.models.columns import utcnow

VERIFY_EMAIL = "verify_email"
CHANGE_EMAIL = "change_email"
RESET_PASSWORD = "reset_password"  # noqa: S105  (a purpose, not a password)

LIFETIMES = {
    VERIFY_EMAIL: dt.timedelta(hours=24),
    CHANGE_EMAIL: dt.timedelta(hours=24),
    RESET_PASSWORD: dt.timedelta(hours=1),
}


class BadLink(ClientError):
    """A link that cannot be used: 400 for an unknown token (`LinkGone` for a known one)."""

    status_code = 400


class LinkGone(BadLink):
    """410: the link was real but is used up or expired (or its address changed since)."""

    status_code = 410


UNKNOWN_LINK = "This link is not valid. Check that you copied all of it from the email."
USED_LINK = "This link has already been used or is no longer valid."
EXPIRED_LINK = "This link has expired."


@dataclass(frozen=True)
class OpenToken:
    """A token that may be used now, with its user."""

    token: AccountToken
    user: User


async def mint(sessions: SessionMaker, user: User, purpose: str, email: str = "") -> str:
    """Store a new token of `purpose` for `user` (mailed to `email`, default: the user's own);
    return the token for the link."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = AccountToken(
        user_id=user.id,
        purpose=purpose,
        email=email or user.email,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + LIFETIMES[purpose],
    )
    async with sessions() as session:
        session.add(row)
        await session.commit()
    return token


async def open_token(session: AsyncSession, token: str, purposes: tuple[str, ...]) -> OpenToken:
    """The token behind a link, if it may be used now.

    A token may be used while it is unused, unexpired, its user is not deleted, and the address
    it was mailed to is still the one that matters: the user's current email for "verify_email"
    and "reset_password" (a link sent to an address the account has since left confers
    nothing), and a still unclaimed address for "change_email" (`AccountToken.email` is then the
    new address). Raise `BadLink` (400) for an unknown token and `LinkGone` (410) for a used,
    expired or outdated one. Nothing is changed.
    """
    query = (
        select(AccountToken, User)
        .join(User, col(User.id) == AccountToken.user_id)
        .where(AccountToken.token_hash == hash_token(token))
    )
    row = (await session.exec(query)).first()
    if row is None or row[0].purpose not in purposes or row[1].deleted_at is not None:
        raise BadLink(UNKNOWN_LINK)
    found, user = row
    if found.used_at is not None:
        raise LinkGone(USED_LINK)
    if found.expires_at <= utcnow():
        raise LinkGone(EXPIRED_LINK)
    if found.purpose != CHANGE_EMAIL and found.email != user.email:
        raise LinkGone(USED_LINK)
    return OpenToken(found, user)


async def use_up(session: AsyncSession, token: AccountToken) -> None:
    """Mark `token` used, with every other open token of its user and purpose, in the caller's
    transaction; `LinkGone` if a concurrent request used it first.

    One conditional UPDATE (`used_at IS NULL`) inside the transaction that applies the token's
    effect, so two clicks racing each other apply it once; after a reset, older reset links are
    dead too."""
    now = utcnow()
    claimed = await session.exec(
        update(AccountToken)
        .where(col(AccountToken.id) == token.id, col(AccountToken.used_at).is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        raise LinkGone(USED_LINK)
    await session.exec(
        update(AccountToken)
        .where(
            col(AccountToken.user_id) == token.user_id,
            col(AccountToken.purpose) == token.purpose,
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=now)
    )
