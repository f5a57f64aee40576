"""Two-factor authentication: turning it on and off, the second login step, the staff guard.

TOTP codes are computed here with pyotp from the secret, as an authenticator app would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pyotp
import pytest
from litestar import get
from sqlmodel import col, select

from app.accounts import two_factor
from app.accounts.request_auth import CookieNames
from app.accounts.web_sessions import Stage
from app.cache.ratelimit import LOGIN_PER_ACCOUNT
from app.main import create_app
from app.models import RecoveryCode, User
from app.models.columns import utcnow
from app.services import Services
from tests.conftest import (
    PASSWORD,
    csrf_token,
    log_in,
    logged_in,
    make_client,
    new_user,
    random_peer,
)
from tests.integration.jobs import emails_to, run_jobs

pytestmark = pytest.mark.db

RECOVERY_CODE = re.compile(r"<code>([0-9a-z]{5}-[0-9a-z]{5})</code>")


# --- helpers ---------------------------------------------------------------------------------


async def enable_2fa(services: Services, user: User) -> tuple[str, list[str]]:
    """Turn 2FA on for `user` directly (no code spent): its secret and recovery codes."""
    secret = pyotp.random_base32()
    async with services.sessions() as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.totp_secret, row.totp_enabled_at = secret, utcnow()
        session.add(row)
        await session.commit()
    assert user.id is not None
    return secret, await two_factor.replace_recovery_codes(services, user.id)


async def reload(services: Services, user: User) -> User:
    async with services.sessions() as session:
        row = await session.get(User, user.id)
    assert row is not None
    return row


async def recovery_rows(services: Services, user: User) -> list[RecoveryCode]:
    query = select(RecoveryCode).where(col(RecoveryCode.user_id) == user.id)
    async with services.sessions() as session:
        return list((await session.exec(query)).all())


def wrong_code(secret: str) -> str:
    """Six digits that are no valid code of `secret` right now (nor in the next step)."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + offset * totp.interval) for offset in (-1, 0, 1, 2)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def session_cookie(services: Services, http: httpx.AsyncClient) -> str:
    return http.cookies[CookieNames.of(services.settings).session]


@asynccontextmanager
async def half_logged_in(
    services: Services, user: User, next_url: str = "/", app: Any = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gave the right password and now faces the second step."""
    if app is None:
        http = make_client(services, peer=random_peer(), scheme="https")
    else:
        transport = httpx.ASGITransport(app=app, client=(random_peer(), 40000))
        http = httpx.AsyncClient(transport=transport, base_url="https://testserver")
    async with http:
        token = await csrf_token(http)
        form = {"email": user.email, "password": PASSWORD, "next": next_url, "csrf_token": token}
        response = await http.post("/login", data=form)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login/2fa?next={quote(next_url)}"
        yield http


async def submit_code(http: httpx.AsyncClient, code: str, next_url: str = "/") -> httpx.Response:
    token = await csrf_token(http, f"/login/2fa?next={quote(next_url)}")
    return await http.post("/login/2fa", data={"code": code, "next": next_url, "csrf_token": token})


async def post_form(http: httpx.AsyncClient, path: str, form: dict[str, str]) -> httpx.Response:
    token = await csrf_token(http, "/account/security")
    return await http.post(path, data={**form, "csrf_token": token})


# --- turning 2FA on ----------------------------------------------------------------------------


async def test_turning_2fa_on_needs_the_password_then_a_code_and_shows_codes_once(services):
    user = await new_user(services)
    async with logged_in(services, user) as http, logged_in(services, user) as other:
        page = await http.get("/account/security")
        assert page.status_code == 200
        assert "Turn on two-factor authentication" in page.text

        refused = await post_form(http, "/account/2fa/setup", {"password": "not my password"})
        assert refused.status_code == 400
        assert two_factor.REAUTH_FAILED in refused.text
        assert (await reload(services, user)).totp_secret is None

        setup = await post_form(http, "/account/2fa/setup", {"password": PASSWORD})
        assert setup.status_code == 200
        pending = await reload(services, user)
        secret = pending.totp_secret
        assert secret is not None
        assert pending.totp_enabled_at is None
        assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in setup.text
        assert user.email in setup.text
        qr = re.search(
            r'<img class="security-qr" src="data:image/svg\+xml;base64,([^"]+)"', setup.text
        )
        assert qr
        assert base64.b64decode(qr[1]).startswith(b"<svg")
        assert "style=" not in setup.text

        token = await csrf_token(http, "/account/security")
        wrong = {"code": wrong_code(secret), "log_out_others": "on", "csrf_token": token}
        refused = await http.post("/account/2fa/confirm", data=wrong)
        assert refused.status_code == 400
        assert "does not match" in refused.text
        assert (await reload(services, user)).totp_enabled_at is None

        before = session_cookie(services, http)
        right = {"code": pyotp.TOTP(secret).now(), "log_out_others": "on", "csrf_token": token}
        confirmed = await http.post("/account/2fa/confirm", data=right)
        assert confirmed.status_code == 200
        codes = RECOVERY_CODE.findall(confirmed.text)
        assert len(codes) == 10 == len(set(codes))
        assert "only time they are shown" in confirmed.text

        assert (await reload(services, user)).has_2fa
        stored = {row.code_hash for row in await recovery_rows(services, user)}
        assert stored == {
            hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes
        }
        # The session id changed, the old one is dead, and the other session was signed out.
        assert session_cookie(services, http) != before
        assert await services.web_sessions.load(before) is None
        assert (await http.get("/")).status_code == 200
        assert (await other.get("/")).status_code == 302

        again = await http.get("/account/security")
        assert not any(code in again.text for code in codes)
        assert "10 of 10 recovery codes unused" in again.text


async def test_turning_2fa_on_can_keep_the_other_sessions(services):
    user = await new_user(services)
    async with logged_in(services, user) as http, logged_in(services, user) as other:
        await post_form(http, "/account/2fa/setup", {"password": PASSWORD})
        secret = (await reload(services, user)).totp_secret
        assert secret is not None
        # An unticked checkbox sends nothing.
        confirmed = await post_form(
            http, "/account/2fa/confirm", {"code": pyotp.TOTP(secret).now()}
        )
        assert confirmed.status_code == 200
        assert (await other.get("/")).status_code == 200


async def test_confirming_without_a_pending_setup_is_refused(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        response = await post_form(http, "/account/2fa/confirm", {"code": "123456"})
    assert response.status_code == 400
    assert two_factor.NO_PENDING_SETUP in response.text
    assert not (await reload(services, user)).has_2fa


# --- the second login step ---------------------------------------------------------------------


async def test_logging_in_with_2fa_takes_a_code_after_the_password(services, site_domain):
    user = await new_user(services)
    secret, _ = await enable_2fa(services, user)
    async with half_logged_in(services, user, next_url=f"/{site_domain}?period=7d") as http:
        half_way = session_cookie(services, http)
        # Half way in is not logged in: every page still sends you to the login page.
        for path in ("/", "/account/security", "/account/sessions"):
            assert (await http.get(path)).status_code == 302, path
        run_jobs(services)
        assert emails_to(services, user.email) == []  # no "new sign-in" yet

        page = await http.get(f"/login/2fa?next=/{site_domain}")
        assert page.status_code == 200
        assert "Use a recovery code instead" in page.text
        wrong = await submit_code(http, wrong_code(secret))
        assert wrong.status_code == 400
        assert "That code is not valid" in wrong.text

        right = await submit_code(http, pyotp.TOTP(secret).now(), f"/{site_domain}?period=7d")
        assert right.status_code == 303
        assert right.headers["location"] == f"/{site_domain}?period=7d"
        assert session_cookie(services, http) != half_way
        session = await services.web_sessions.load(session_cookie(services, http))
        assert session is not None
        assert session.stage is Stage.FULL
        assert (await http.get("/")).status_code == 200
        run_jobs(services)
        assert len(emails_to(services, user.email)) == 1


async def test_the_second_step_needs_a_half_way_session(services):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        page = await http.get("/login/2fa")
        assert page.status_code == 302
        assert page.headers["location"] == "/login"
        token = await csrf_token(http)
        answer = await http.post("/login/2fa", data={"code": "123456", "csrf_token": token})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"


async def test_an_outside_next_is_ignored_after_the_second_step(services):
    user = await new_user(services)
    secret, _ = await enable_2fa(services, user)
    async with half_logged_in(services, user) as http:
        answer = await submit_code(http, pyotp.TOTP(secret).now(), "//evil.example/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


async def test_a_totp_code_works_only_once(services):
    user = await new_user(services)
    secret, _ = await enable_2fa(services, user)
    code = pyotp.TOTP(secret).now()
    async with half_logged_in(services, user) as first:
        assert (await submit_code(first, code)).status_code == 303
    async with half_logged_in(services, user) as second:
        replayed = await submit_code(second, code)
        assert replayed.status_code == 400
        assert two_factor.CODE_ALREADY_USED in replayed.text
        assert (await second.get("/")).status_code == 302


async def test_a_recovery_code_works_once(services):
    user = await new_user(services)
    _, codes = await enable_2fa(services, user)
    async with half_logged_in(services, user) as first:
        page = await first.get("/login/2fa?method=recovery")
        assert "Recovery code" in page.text
        # Typed in capitals with a space instead of the dash: still the same code.
        answer = await submit_code(first, codes[3].upper().replace("-", " "))
        assert answer.status_code == 303
        assert (await first.get("/")).status_code == 200
    used = [row for row in await recovery_rows(services, user) if row.used_at is not None]
    assert len(used) == 1
    async with half_logged_in(services, user) as second:
        assert (await submit_code(second, codes[3])).status_code == 400
        assert (await submit_code(second, codes[4])).status_code == 303


async def test_too_many_wrong_codes_are_rate_limited(services):
    user = await new_user(services)
    secret, _ = await enable_2fa(services, user)
    async with half_logged_in(services, user) as http:
        for _ in range(5):
            assert (await submit_code(http, wrong_code(secret))).status_code == 400
        limited = await submit_code(http, pyotp.TOTP(secret).now())
        assert limited.status_code == 429
        assert 0 < int(limited.headers["retry-after"]) <= 2 * 15 * 60  # the window slides
        assert (await http.get("/")).status_code == 302


async def test_logging_in_with_2fa_again_and_again_is_never_limited(services):
    user = await new_user(services)
    _, codes = await enable_2fa(services, user)
    peer, answers = random_peer(), []
    for code in codes:  # more logins than TOTP_PER_ACCOUNT (or LOGIN_PER_ACCOUNT) allows failures
        async with make_client(services, peer=peer, scheme="https") as http:
            assert (await log_in(http, user.email)).status_code == 303
            answers.append((await submit_code(http, code)).status_code)
    assert answers == [303] * two_factor.RECOVERY_CODE_COUNT


async def test_wrong_codes_count_as_failed_logins_from_their_address(services):
    user = await new_user(services)
    secret, _ = await enable_2fa(services, user)
    failing = random_peer()
    # The right password and a wrong code, five times: ten failed logins from one address.
    for _ in range(LOGIN_PER_ACCOUNT.limit // 2):
        async with make_client(services, peer=failing, scheme="https") as http:
            assert (await log_in(http, user.email)).status_code == 303
            assert (await submit_code(http, wrong_code(secret))).status_code == 400
    async with make_client(services, peer=failing, scheme="https") as http:
        assert (await log_in(http, user.email)).status_code == 429
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        answer = await log_in(http, user.email)
        assert answer.headers["location"] == "/login/2fa?next=/"
        # Five wrong codes also reached the account's code limit, which knows no addresses.
        assert (await submit_code(http, pyotp.TOTP(secret).now())).status_code == 429


async def test_rechecking_the_password_counts_only_failures(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        answers = [
            (await post_form(http, "/account/2fa/setup", {"password": PASSWORD})).status_code
            for _ in range(LOGIN_PER_ACCOUNT.limit + 1)
        ]
        assert answers == [200] * (LOGIN_PER_ACCOUNT.limit + 1)
        # Someone else locks the account with wrong passwords from another address: the owner,
        # logged in here, can still confirm theirs (and then turn 2FA on, or change it).
        async with make_client(services, peer=random_peer(), scheme="https") as stranger:
            for _ in range(LOGIN_PER_ACCOUNT.limit):
                assert (await log_in(stranger, user.email, "a guess")).status_code == 400
            assert (await log_in(stranger, user.email)).status_code == 429
        assert (
            await post_form(http, "/account/2fa/setup", {"password": PASSWORD})
        ).status_code == 200


# --- turning 2FA off, new recovery codes -------------------------------------------------------


@asynccontextmanager
async def logged_in_with_2fa(
    services: Services, user: User, secret: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with half_logged_in(services, user) as http:
        assert (await submit_code(http, pyotp.TOTP(secret).now())).status_code == 303
        yield http


async def test_turning_2fa_off_needs_the_password_and_a_code(services):
    user = await new_user(services)
    secret, codes = await enable_2fa(services, user)
    async with logged_in_with_2fa(services, user, secret) as http:
        form = {"password": "not my password", "code": codes[0]}
        wrong_password = await post_form(http, "/account/2fa/disable", form)
        assert wrong_password.status_code == 400
        assert two_factor.REAUTH_FAILED in wrong_password.text
        form = {"password": PASSWORD, "code": wrong_code(secret)}
        assert (await post_form(http, "/account/2fa/disable", form)).status_code == 400
        assert (await reload(services, user)).has_2fa

        before = session_cookie(services, http)
        answer = await post_form(
            http, "/account/2fa/disable", {"password": PASSWORD, "code": codes[0]}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account/security?done=2fa-off"
        assert session_cookie(services, http) != before
        page = await http.get(answer.headers["location"])
        assert "Two-factor authentication is off" in page.text

    off = await reload(services, user)
    assert off.totp_secret is None
    assert off.totp_enabled_at is None
    assert await recovery_rows(services, user) == []
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        answer = await log_in(http, user.email)
        assert answer.headers["location"] == "/"  # no second step any more


async def test_new_recovery_codes_replace_the_old_ones(services):
    user = await new_user(services)
    secret, old = await enable_2fa(services, user)
    async with logged_in_with_2fa(services, user, secret) as http:
        refused = await post_form(http, "/account/2fa/recovery-codes", {"password": "nope"})
        assert refused.status_code == 400
        answer = await post_form(http, "/account/2fa/recovery-codes", {"password": PASSWORD})
        assert answer.status_code == 200
        new = RECOVERY_CODE.findall(answer.text)
        assert len(new) == 10
        assert not set(new) & set(old)
    async with half_logged_in(services, user) as http:
        assert (await submit_code(http, old[0])).status_code == 400
        assert (await submit_code(http, new[0])).status_code == 303


# --- the staff guard ---------------------------------------------------------------------------


@get("/test-staff-only", guards=[two_factor.staff_with_2fa], sync_to_thread=False)
def staff_probe() -> str:
    return "staff only"


@pytest.fixture
def staff_app(services: Services) -> Any:
    """The real app, plus one route behind the staff guard."""
    app = create_app(services.settings, services)
    app.register(staff_probe)
    return app


@asynccontextmanager
async def staff_client(
    services: Services, app: Any, user: User | None
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(random_peer(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        if user is not None:
            assert (await log_in(http, user.email)).status_code == 303
        yield http


async def test_staff_guard_sends_anonymous_visitors_to_the_login_page(services, staff_app):
    async with staff_client(services, staff_app, None) as http:
        response = await http.get("/test-staff-only?page=2")
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/test-staff-only%3Fpage%3D2"


async def test_staff_guard_hides_the_section_from_customers(services, staff_app):
    async with staff_client(services, staff_app, await new_user(services)) as http:
        response = await http.get("/test-staff-only", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "staff only" not in response.text


async def test_staff_guard_asks_staff_without_2fa_to_turn_it_on(services, staff_app):
    staff = await new_user(services, staff=True)
    async with staff_client(services, staff_app, staff) as http:
        response = await http.get("/test-staff-only")
    assert response.status_code == 403
    assert "/account/security" in response.json()["error"]


async def test_staff_guard_lets_staff_with_2fa_in_after_the_second_step(services, staff_app):
    staff = await new_user(services, staff=True)
    secret, _ = await enable_2fa(services, staff)
    async with half_logged_in(services, staff, app=staff_app) as http:
        half_way = await http.get("/test-staff-only")
        assert half_way.status_code == 302  # password alone is not enough
        assert (await submit_code(http, pyotp.TOTP(secret).now())).status_code == 303
        response = await http.get("/test-staff-only")
    assert response.status_code == 200
    assert response.text == "staff only"
