"""The sessions page: where a user is signed in, and signing sessions out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.accounts.request_auth import CookieNames
from app.accounts.web_sessions import session_key
from app.models import User
from app.services import Services
from tests.conftest import PEER_IP, csrf_token, log_in, logged_in, make_client, new_user

pytestmark = pytest.mark.db

FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
REVOKE_FORM = re.compile(r'action="/account/sessions/([0-9a-f]{16})/revoke"')


@asynccontextmanager
async def firefox_in_britain(services: Services, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """A second login of `user`, from Firefox on Linux and a GB address."""
    async with make_client(services, peer=PEER_IP, scheme="https") as http:
        http.headers["user-agent"] = FIREFOX_ON_LINUX
        assert (await log_in(http, user.email)).status_code == 303
        yield http


def public_id_of(services: Services, http: httpx.AsyncClient) -> str:
    """The public id of the session a client holds (a prefix of its cookie's SHA-256)."""
    return session_key(http.cookies[CookieNames.of(services.settings).session])[:16]


async def revoke(http: httpx.AsyncClient, public_id: str) -> httpx.Response:
    token = await csrf_token(http, "/account/sessions")
    return await http.post(f"/account/sessions/{public_id}/revoke", data={"csrf_token": token})


async def test_the_page_lists_the_sessions_with_this_device_first(services):
    user = await new_user(services)
    async with logged_in(services, user) as http, firefox_in_britain(services, user) as firefox:
        page = await http.get("/account/sessions")
        assert page.status_code == 200
        assert REVOKE_FORM.findall(page.text) == [
            public_id_of(services, http),
            public_id_of(services, firefox),
        ]
        assert page.text.count("(this device)") == 1
        assert "Firefox on Linux" in page.text
        assert "<td>GB</td>" in page.text
        assert "just now" in page.text
        assert "Sign out all other sessions" in page.text


async def test_a_single_session_says_so(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        page = await http.get("/account/sessions")
    assert len(REVOKE_FORM.findall(page.text)) == 1
    assert "This is your only session." in page.text
    assert "Sign out all other sessions" not in page.text


async def test_signing_out_another_session(services):
    user = await new_user(services)
    async with logged_in(services, user) as http, firefox_in_britain(services, user) as firefox:
        other = public_id_of(services, firefox)
        answer = await revoke(http, other)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account/sessions?done=revoked"
        assert (await firefox.get("/")).status_code == 302
        assert (await http.get("/")).status_code == 200
        page = await http.get(answer.headers["location"])
        assert "That session has been signed out." in page.text
        assert REVOKE_FORM.findall(page.text) == [public_id_of(services, http)]
        # Once gone, it cannot be signed out again.
        assert (await revoke(http, other)).status_code == 404


async def test_signing_out_this_session_logs_out(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        answer = await revoke(http, public_id_of(services, http))
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"
        assert (await http.get("/")).status_code == 302
    assert await services.web_sessions.list_for_user(user.id) == []


async def test_signing_out_all_other_sessions(services):
    user = await new_user(services)
    async with (
        logged_in(services, user) as http,
        logged_in(services, user) as second,
        firefox_in_britain(services, user) as third,
    ):
        token = await csrf_token(http, "/account/sessions")
        answer = await http.post("/account/sessions/revoke-others", data={"csrf_token": token})
        assert answer.status_code == 303
        assert (await second.get("/")).status_code == 302
        assert (await third.get("/")).status_code == 302
        assert (await http.get("/")).status_code == 200
    sessions = await services.web_sessions.list_for_user(user.id)
    assert [session.public_id for session in sessions] == [public_id_of(services, http)]


async def test_nobody_can_sign_out_someone_elses_session(services):
    victim, intruder = await new_user(services), await new_user(services)
    async with logged_in(services, victim) as target, logged_in(services, intruder) as http:
        answer = await revoke(http, public_id_of(services, target))
        assert answer.status_code == 404
        assert (await target.get("/")).status_code == 200
        page = await http.get("/account/sessions")
        assert public_id_of(services, target) not in page.text


async def test_the_page_needs_a_login(services):
    async with make_client(services, scheme="https") as http:
        page = await http.get("/account/sessions")
    assert page.status_code == 302
    assert page.headers["location"] == "/login?next=/account/sessions"
