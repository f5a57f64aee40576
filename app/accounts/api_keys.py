"""Stats API keys: creating, listing, revoking, and recognising a key a request carries.

A key is `ursa_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits); only its
SHA-256 is stored, so a database leak yields no usable key, and a fast unsalted hash is enough
for a value that cannot be guessed. The first `PREFIX_LENGTH` characters are kept in the clear
to tell keys apart in the list. A key reaches only the sites its user may read: it carries no
rights of its own (`app.organizations.access` decides, as for the dashboard).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlmodel import col, select

from app.db import SessionMaker
from app.errors import InvalidInput, NotFound
from app.models import ApiKey, User, hash_token
from app.models.columns import utcnow

KEY_PREFIX = "ursa_"
PREFIX_LENGTH = 12  # "ursa_" and 7 random characters: shown in the list
MAX_NAME_LENGTH = 100
MAX_KEYS_PER_USER = 50
MAX_KEY_LENGTH = 200  # longer Authorization values are not keys: refused before hashing
# `last_used_at` is written at most this often per key: one write a minute, not one a request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_key(sessions: SessionMaker, user: User, name: str) -> tuple[ApiKey, str]:
    """A new key of `user` named `name`, and the key itself (shown once, never stored)."""
    label = " ".join(name.split())
    if not label:
        raise InvalidInput("give the key a name, so you can tell it apart later")
    if len(label) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a key's name is at most {MAX_NAME_LENGTH} characters")
    assert user.id is not None
    if len(await list_keys(sessions, user.id)) >= MAX_KEYS_PER_USER:
        raise InvalidInput(f"at most {MAX_KEYS_PER_USER} live keys: revoke one first")
    secret = new_secret()
    key = ApiKey(
        user_id=user.id, name=label, prefix=secret[:PREFIX_LENGTH], key_hash=hash_token(secret)
    )
    async with sessions() as session:
        session.add(key)
        await session.commit()
        await session.refresh(key)
    return key, secret


async def list_keys(sessions: SessionMaker, user_id: int) -> list[ApiKey]:
    """The user's live (unrevoked) keys, newest first."""
    query = (
        select(ApiKey)
        .where(ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
    )
    async with sessions() as session:
        return list((await session.exec(query)).all())


async def revoke_key(sessions: SessionMaker, user_id: int, key_id: int) -> ApiKey:
    """Revoke one of the user's keys at once; another user's key is answered as missing."""
    async with sessions() as session:
        key = await session.get(ApiKey, key_id)
        if key is None or key.user_id != user_id or key.revoked_at is not None:
            raise NotFound("no such API key")
        key.revoked_at = utcnow()
        session.add(key)
        await session.commit()
    return key


async def authenticate(sessions: SessionMaker, secret: str) -> tuple[ApiKey, User] | None:
    """The live key `secret` is, with its (live) user; None for anything else.

    Marks the key used (at most once per `LAST_USED_RESOLUTION`)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > MAX_KEY_LENGTH:
        return None
    query = (
        select(ApiKey, User)
        .join(User, col(User.id) == ApiKey.user_id)
        .where(
            ApiKey.key_hash == hash_token(secret),
            col(ApiKey.revoked_at).is_(None),
            col(User.deleted_at).is_(None),
        )
    )
    async with sessions() as session:
        row = (await session.exec(query)).first()
        if row is None:
            return None
        key, user = row
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now
            session.add(key)
            await session.commit()
    return key, user
