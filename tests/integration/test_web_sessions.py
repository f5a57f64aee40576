"""The session store: timeouts, rotation and the per-user index, against a real Redis."""

from __future__ import annotations

import secrets
import time

import pytest

from app.accounts.web_sessions import SECOND_FACTOR_SECONDS, SessionStore, Stage
from app.store.keys import WEB_SESSION as SESSION_PREFIX

pytestmark = pytest.mark.db


def user_id() -> int:
    """An id no test user has: the store is shared with the other tests' logins."""
    return 10**9 + secrets.randbelow(10**9)


@pytest.fixture
def store(services) -> SessionStore:
    return SessionStore(services.redis, idle_seconds=3600, absolute_seconds=7200)


async def test_idle_and_half_way_sessions_expire_in_redis(services, store):
    _, full = await store.create(user_id(), Stage.FULL)
    _, half = await store.create(user_id(), Stage.SECOND_FACTOR)
    assert 3590 <= await services.redis.ttl(SESSION_PREFIX + full.key) <= 3600
    assert 590 <= await services.redis.ttl(SESSION_PREFIX + half.key) <= SECOND_FACTOR_SECONDS


async def test_a_session_past_its_absolute_lifetime_is_gone(services, store):
    uid = user_id()
    token, session = await store.create(uid, Stage.FULL)
    await services.redis.hset(SESSION_PREFIX + session.key, "created_at", repr(time.time() - 7201))
    assert await store.load(token) is None
    assert await services.redis.exists(SESSION_PREFIX + session.key) == 0
    assert await store.list_for_user(uid) == []


async def test_rotation_keeps_the_user_and_drops_the_old_id(store):
    uid = user_id()
    token, session = await store.create(uid, Stage.SECOND_FACTOR, country="GB", agent="Firefox")
    new_token, rotated = await store.rotate(session, Stage.FULL)
    assert new_token != token
    assert rotated.key != session.key
    assert rotated.csrf_seed != session.csrf_seed
    assert (rotated.user_id, rotated.stage, rotated.country) == (uid, Stage.FULL, "GB")
    assert await store.load(token) is None
    loaded = await store.load(new_token)
    assert loaded is not None
    assert loaded.authenticated
    assert [s.key for s in await store.list_for_user(uid)] == [rotated.key]


async def test_revoking_is_scoped_to_the_user(store):
    me = user_id()
    _, mine = await store.create(me, Stage.FULL)
    other_token, theirs = await store.create(user_id(), Stage.FULL)
    assert not await store.revoke(me, theirs.public_id)
    assert await store.load(other_token) is not None
    assert await store.revoke(me, mine.public_id)
    assert await store.list_for_user(me) == []


async def test_garbage_tokens_are_no_session(store):
    for token in ("", "x" * 200, "not-a-token"):
        assert await store.load(token) is None
