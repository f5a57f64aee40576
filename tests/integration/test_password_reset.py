"""Password reset: the same answer for any address, single-use expiring links, all sessions end."""

from __future__ import annotations

import pytest

from app.accounts.tokens import RESET_PASSWORD
from app.cache.ratelimit import LOGIN_PER_ACCOUNT
from tests.conftest import PASSWORD, log_in, logged_in, make_client, new_user, random_peer
from tests.integration.account_helpers import (
    anonymous,
    expire_tokens,
    reload,
    submit,
    tokens_of,
)
from tests.integration.jobs import emails_to, link_in, run_jobs, text_of

pytestmark = pytest.mark.db

NEW_PASSWORD = "a brand new password for ursa"


async def ask_for_reset(services, email: str) -> str:
    """Request a reset from a fresh client; return the Location of the answer."""
    async with anonymous(services) as http:
        answer = await submit(http, "/password/forgot", {"email": email})
    assert answer.status_code == 303
    return answer.headers["location"]


async def reset_link(services, email: str) -> str:
    assert await ask_for_reset(services, email) == "/password/forgot/sent"
    run_jobs(services)
    [message] = [m for m in emails_to(services, email) if "Reset" in m["Subject"]]
    return link_in(message, "/password/reset/")


async def test_reset_end_to_end_ends_every_session(services):
    user = await new_user(services)
    async with logged_in(services, user) as elsewhere:
        link = await reset_link(services, user.email)
        async with anonymous(services) as http:
            form = await http.get(link)
            assert form.status_code == 200
            assert "Choose a new password" in form.text
            [token] = await tokens_of(services, user.id)
            assert token.purpose == RESET_PASSWORD
            assert token.used_at is None  # GET changed nothing

            short = await submit(http, link, {"password": "short"})
            assert short.status_code == 400
            assert "at least 10 characters" in short.text

            done = await submit(http, link, {"password": NEW_PASSWORD})
            assert done.status_code == 303
            assert done.headers["location"] == "/login?notice=password-reset"

            again = await submit(http, "/password/forgot", {"password": "x" * 12}, action=link)
            assert again.status_code == 410

            assert (await log_in(http, user.email, PASSWORD)).status_code == 400
            assert (await log_in(http, user.email, NEW_PASSWORD)).status_code == 303

        kicked_out = await elsewhere.get("/account")
        assert kicked_out.status_code == 302
        assert kicked_out.headers["location"].startswith("/login")

    run_jobs(services)
    changed = [m for m in emails_to(services, user.email) if "was changed" in m["Subject"]]
    assert len(changed) == 1
    assert "/password/forgot" in text_of(changed[0])


async def test_a_reset_confirms_an_unverified_email(services):
    user = await new_user(services, verified=False)
    link = await reset_link(services, user.email)
    async with anonymous(services) as http:
        assert (await submit(http, link, {"password": NEW_PASSWORD})).status_code == 303
        assert (await log_in(http, user.email, NEW_PASSWORD)).status_code == 303
    assert (await reload(services, user.id)).email_verified_at is not None


async def test_unknown_and_deleted_addresses_get_the_same_answer_and_no_email(services):
    known = await new_user(services)
    gone = await new_user(services)
    async with services.sessions() as session:
        gone.deleted_at = gone.created_at
        session.add(gone)
        await session.commit()
    unknown = "nobody-for-reset@example.com"
    answers = {await ask_for_reset(services, email) for email in (known.email, gone.email, unknown)}
    assert answers == {"/password/forgot/sent"}
    run_jobs(services)
    assert len(emails_to(services, known.email)) == 1
    assert emails_to(services, gone.email) == []
    assert emails_to(services, unknown) == []


async def test_an_expired_reset_link_is_refused_and_changes_nothing(services):
    user = await new_user(services)
    link = await reset_link(services, user.email)
    await expire_tokens(services, user.id)
    async with anonymous(services) as http:
        page = await http.get(link)
        assert page.status_code == 410
        assert "expired" in page.text
        assert 'href="/password/forgot"' in page.text
        posted = await submit(http, "/password/forgot", {"password": NEW_PASSWORD}, action=link)
        assert posted.status_code == 410
        assert (await log_in(http, user.email, PASSWORD)).status_code == 303


async def test_reset_requests_are_limited_per_account(services):
    user = await new_user(services)
    for _ in range(3):  # RESET_PER_ACCOUNT, each from another address
        assert await ask_for_reset(services, user.email) == "/password/forgot/sent"
    async with anonymous(services) as http:
        token_page = await http.get("/password/forgot")
        assert token_page.status_code == 200
        limited = await submit(http, "/password/forgot", {"email": user.email.upper()})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


async def test_a_reset_lifts_the_lockout_even_for_the_failing_address(services):
    user = await new_user(services)
    failing = random_peer()
    for _ in range(LOGIN_PER_ACCOUNT.limit):
        async with make_client(services, peer=failing, scheme="https") as http:
            assert (await log_in(http, user.email, "forgot it")).status_code == 400
    async with make_client(services, peer=failing, scheme="https") as http:
        assert (await log_in(http, user.email)).status_code == 429
        link = await reset_link(services, user.email)
        assert (await submit(http, link, {"password": NEW_PASSWORD})).status_code == 303
        assert (await log_in(http, user.email, NEW_PASSWORD)).status_code == 303
