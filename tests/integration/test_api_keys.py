"""Stats API keys: created (shown once), listed with their last use, revoked; stored hashed."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlmodel import select

from app.accounts import api_keys
from app.errors import InvalidInput, NotFound
from app.models import ApiKey
from app.services import Services
from tests.conftest import csrf_token, logged_in, new_user
from tests.integration.helpers import run_ursa

pytestmark = pytest.mark.db
SECRET = re.compile(r"data-api-key>(ursa_[A-Za-z0-9_-]{43})<")


async def _stored(services: Services, user_id: int) -> list[ApiKey]:
    async with services.sessions() as session:
        return list((await session.exec(select(ApiKey).where(ApiKey.user_id == user_id))).all())


async def test_a_key_is_stored_hashed_and_recognised(services):
    user = await new_user(services)
    key, secret = await api_keys.create_key(services.sessions, user, "  Weekly   report ")
    assert key.name == "Weekly report"
    assert secret.startswith("ursa_")
    assert len(secret) == 48
    assert key.prefix == secret[:12]
    assert user.id is not None
    (row,) = await _stored(services, user.id)
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(row.model_dump())
    assert row.last_used_at is None
    found = await api_keys.authenticate(services.sessions, secret)
    assert found is not None
    assert found[0].id == key.id
    assert found[1].id == user.id
    assert (await _stored(services, user.id))[0].last_used_at is not None
    assert await api_keys.authenticate(services.sessions, secret[:-1] + "x") is None
    assert await api_keys.authenticate(services.sessions, "not-a-key") is None


async def test_a_revoked_key_is_refused_and_unlisted(services):
    user = await new_user(services)
    assert user.id is not None
    key, secret = await api_keys.create_key(services.sessions, user, "ci")
    assert key.id is not None
    await api_keys.revoke_key(services.sessions, user.id, key.id)
    assert await api_keys.authenticate(services.sessions, secret) is None
    assert await api_keys.list_keys(services.sessions, user.id) == []
    other = await new_user(services)
    assert other.id is not None
    with pytest.raises(NotFound):
        await api_keys.revoke_key(services.sessions, other.id, key.id)


async def test_names_are_required_and_bounded(services):
    user = await new_user(services)
    for name in ("", "   ", "x" * 101):
        with pytest.raises(InvalidInput):
            await api_keys.create_key(services.sessions, user, name)


async def test_the_settings_page_creates_shows_once_lists_and_revokes(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        token = await csrf_token(http, "/account")
        created = await http.post(
            "/account/api-keys", data={"name": "Grafana", "csrf_token": token}
        )
        assert created.status_code == 201
        secret = SECRET.search(created.text)
        assert secret, created.text
        assert created.headers["cache-control"] == "no-store"
        assert await api_keys.authenticate(services.sessions, secret[1]) is not None
        page = await http.get("/account")
        assert secret[1] not in page.text  # shown once
        assert "Grafana" in page.text
        assert secret[1][:12] in page.text
        assert " UTC</time>" in page.text  # the last use, just now
        (key_id,) = re.findall(r"/account/api-keys/(\d+)/revoke", page.text)
        empty = await http.post("/account/api-keys", data={"name": " ", "csrf_token": token})
        assert empty.status_code == 400
        assert "Give the key a name" in empty.text
        forged = await http.post(f"/account/api-keys/{key_id}/revoke")
        assert forged.status_code == 403  # no CSRF token
        revoked = await http.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": token})
        assert (revoked.status_code, revoked.headers["location"]) == (
            303,
            "/account?notice=api-key-revoked",
        )
        after = await http.get("/account")
    assert "Grafana" not in after.text
    assert "You have no API keys." in after.text
    assert await api_keys.authenticate(services.sessions, secret[1]) is None


async def test_another_user_cannot_revoke_a_key(services):
    owner, other = await new_user(services), await new_user(services)
    key, secret = await api_keys.create_key(services.sessions, owner, "mine")
    async with logged_in(services, other) as http:
        token = await csrf_token(http, "/account")
        response = await http.post(f"/account/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 404
    assert await api_keys.authenticate(services.sessions, secret) is not None


async def test_the_command_prints_a_working_key(settings, services):
    user = await new_user(services)
    result = await run_ursa(settings, "api-keys", "create", "--email", user.email, "--name", "cli")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    found = await api_keys.authenticate(services.sessions, secret)
    assert found is not None
    assert found[1].id == user.id
    assert found[0].name == "cli"
    missing = await run_ursa(
        settings, "api-keys", "create", "--email", "nobody@example.com", "--name", "x"
    )
    assert missing.exit_code == 2
    assert "no user" in missing.output
