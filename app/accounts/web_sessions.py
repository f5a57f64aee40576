"""Server-side login sessions in Redis, with a per-user index.

Redis knows a session only by the SHA-256 of its cookie's token (`session_key`), so a copy of
Redis gives no usable cookie.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from app.store import keys

# `last_seen` (and the idle expiry) is written at most this often: one write per minute of
# activity rather than one per request.
TOUCH_INTERVAL_SECONDS = 60
# Between password and second factor: long enough to find the phone, no longer.
SECOND_FACTOR_SECONDS = 600


class Stage(enum.StrEnum):
    FULL = "full"  # logged in
    SECOND_FACTOR = "2fa"  # password checked, TOTP or recovery code still to come


@dataclass(frozen=True, slots=True)
class WebSession:
    key: str  # SHA-256 of the cookie token
    user_id: int
    stage: Stage
    csrf_seed: str
    created_at: float
    last_seen: float
    country: str = ""
    agent: str = ""  # "Firefox on macOS": shown on the sessions page

    @property
    def public_id(self) -> str:
        """What the sessions page shows and its revoke buttons send."""
        return self.key[:16]

    @property
    def authenticated(self) -> bool:
        return self.stage is Stage.FULL

    def as_fields(self) -> dict[Any, Any]:
        return {
            "user_id": str(self.user_id),
            "stage": self.stage.value,
            "csrf_seed": self.csrf_seed,
            "created_at": repr(self.created_at),
            "last_seen": repr(self.last_seen),
            "country": self.country,
            "agent": self.agent,
        }

    @classmethod
    def from_fields(cls, key: str, fields: Mapping[Any, bytes]) -> WebSession | None:
        try:
            return cls(
                key=key,
                user_id=int(fields[b"user_id"]),
                stage=Stage(fields[b"stage"].decode()),
                csrf_seed=fields[b"csrf_seed"].decode(),
                created_at=float(fields[b"created_at"]),
                last_seen=float(fields[b"last_seen"]),
                country=fields.get(b"country", b"").decode(),
                agent=fields.get(b"agent", b"").decode(),
            )
        except (KeyError, ValueError):
            return None


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Login sessions, each expiring after `idle_seconds` without a request and, in any case,
    `absolute_seconds` after it began; a set per user (`keys.USER_WEB_SESSIONS`) lists them, to
    be shown and revoked.

    Litestar's server-side sessions keep the same id across a login and write a session for
    every anonymous response; these do neither. A session exists only once someone has logged
    in (or is half way, between password and 2FA code), and its id changes whenever its
    privileges do (`rotate`), so an id planted in a browser before login is worth nothing after.
    """

    def __init__(self, redis: aioredis.Redis, *, idle_seconds: int, absolute_seconds: int) -> None:
        self._redis = redis
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds

    async def create(
        self, user_id: int, stage: Stage, *, country: str = "", agent: str = ""
    ) -> tuple[str, WebSession]:
        """A new session: the cookie token and the session."""
        now = time.time()
        session = WebSession(
            key="",
            user_id=user_id,
            stage=stage,
            csrf_seed=secrets.token_urlsafe(24),
            created_at=now,
            last_seen=now,
            country=country,
            agent=agent,
        )
        return await self._save_new(session)

    async def _save_new(self, session: WebSession) -> tuple[str, WebSession]:
        token = secrets.token_urlsafe(32)
        session = replace(session, key=session_key(token))
        index = f"{keys.USER_WEB_SESSIONS}{session.user_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.WEB_SESSION + session.key, mapping=session.as_fields())
            pipe.expire(keys.WEB_SESSION + session.key, self._ttl(session, session.last_seen))
            pipe.sadd(index, session.key)
            pipe.expire(index, self.absolute_seconds)
            await pipe.execute()
        return token, session

    def _ttl(self, session: WebSession, now: float) -> int:
        remaining = session.created_at + self.absolute_seconds - now
        idle = self.idle_seconds if session.authenticated else SECOND_FACTOR_SECONDS
        return max(1, int(min(idle, remaining)))

    async def load(self, token: str) -> WebSession | None:
        """The live session for a cookie token; None when unknown, idle or too old."""
        if not token or len(token) > 100:
            return None
        key = session_key(token)
        fields: dict[Any, bytes] = await self._redis.hgetall(keys.WEB_SESSION + key)  # type: ignore[assignment]
        session = WebSession.from_fields(key, fields) if fields else None
        if session is None:
            return None
        now = time.time()
        limit = self.absolute_seconds if session.authenticated else SECOND_FACTOR_SECONDS
        if now - session.created_at >= limit:
            await self._delete(session.user_id, [session.key])
            return None
        if now - session.last_seen >= TOUCH_INTERVAL_SECONDS:
            session = replace(session, last_seen=now)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.WEB_SESSION + key, "last_seen", repr(now))
                pipe.expire(keys.WEB_SESSION + key, self._ttl(session, now))
                await pipe.execute()
        return session

    async def rotate(
        self, session: WebSession, stage: Stage | None = None
    ) -> tuple[str, WebSession]:
        """The same session under a new id (and a new CSRF seed); the old id stops working."""
        now = time.time()
        renewed = replace(
            session,
            stage=stage or session.stage,
            csrf_seed=secrets.token_urlsafe(24),
            last_seen=now,
            # Passing the second factor starts the session's life: the absolute timeout counts
            # from the full login.
            created_at=now
            if stage is Stage.FULL and session.stage is not Stage.FULL
            else session.created_at,
        )
        await self._delete(session.user_id, [session.key])
        return await self._save_new(renewed)

    async def destroy(self, session: WebSession) -> None:
        await self._delete(session.user_id, [session.key])

    async def list_for_user(self, user_id: int) -> list[WebSession]:
        """Live sessions, newest first; index entries of expired sessions are pruned."""
        index = f"{keys.USER_WEB_SESSIONS}{user_id}"
        members: set[bytes] = await self._redis.smembers(index)  # type: ignore[assignment]
        found = sorted(key.decode() for key in members)
        if not found:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.hgetall(keys.WEB_SESSION + key)
            rows = await pipe.execute()
        sessions, stale = [], []
        for key, fields in zip(found, rows, strict=True):
            session = WebSession.from_fields(key, fields) if fields else None
            if session is None or session.user_id != user_id:
                stale.append(key)
            else:
                sessions.append(session)
        if stale:
            await self._redis.srem(index, *stale)
        return sorted(sessions, key=lambda s: s.last_seen, reverse=True)

    async def revoke(self, user_id: int, public_id: str) -> bool:
        """End one of the user's sessions, named by `public_id`; False if none matches."""
        matches = [s.key for s in await self.list_for_user(user_id) if s.public_id == public_id]
        await self._delete(user_id, matches)
        return bool(matches)

    async def revoke_all(self, user_id: int, *, keep: WebSession | None = None) -> int:
        """End every session of the user except `keep`; how many ended."""
        ending = [
            s.key for s in await self.list_for_user(user_id) if keep is None or s.key != keep.key
        ]
        await self._delete(user_id, ending)
        return len(ending)

    async def _delete(self, user_id: int, ending: list[str]) -> None:
        if not ending:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(keys.WEB_SESSION + key for key in ending))
            pipe.srem(f"{keys.USER_WEB_SESSIONS}{user_id}", *ending)
            await pipe.execute()
