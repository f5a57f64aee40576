"""The account page: changing the password (sessions end, the id rotates) and the email (by link)."""

from __future__ import annotations

import secrets

import pytest

from app.accounts.request_auth import CookieNames
from tests.conftest import PASSWORD, log_in, logged_in, new_user
from tests.integration.account_helpers import anonymous, reload, sign_up, submit
from tests.integration.jobs import emails_to, link_in, run_jobs, text_of

pytestmark = pytest.mark.db

NEW_PASSWORD = "my new and longer password"


def change_password(current: str, new: str, *, end_others: bool = True) -> dict[str, str]:
    form = {"current_password": current, "new_password": new}
    return {**form, "end_other_sessions": "on"} if end_others else form


async def test_the_account_page_shows_the_email_and_the_other_settings(
    services, owner_client, owner
):
    page = await owner_client.get("/account")
    assert page.status_code == 200
    assert owner.email in page.text
    for path in ("/account/security", "/account/sessions", "/orgs", "/account/delete"):
        assert f'href="{path}"' in page.text
    assert "no-store" in page.headers["cache-control"]


async def test_the_account_page_needs_a_login(services):
    async with anonymous(services) as http:
        response = await http.get("/account")
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=/account"


async def test_a_wrong_current_password_changes_nothing(services):
    user = await new_user(services)
    async with logged_in(services, user) as http:
        answer = await submit(
            http,
            "/account",
            change_password("wrong password!", NEW_PASSWORD),
            action="/account/password",
        )
        assert answer.status_code == 400
        assert "current password is not correct" in answer.text
        email = await submit(
            http,
            "/account",
            {"current_password": "wrong password!", "email": "x@example.com"},
            action="/account/email",
        )
        assert email.status_code == 400
        assert "current password is not correct" in email.text
        short = await submit(
            http, "/account", change_password(PASSWORD, "short"), action="/account/password"
        )
        assert short.status_code == 400
        assert "at least 10 characters" in short.text
    assert (await reload(services, user.id)).password_hash == user.password_hash


async def test_a_password_change_ends_other_sessions_and_rotates_this_one(services):
    user = await new_user(services)
    names = CookieNames.of(services.settings)
    async with logged_in(services, user) as here, logged_in(services, user) as there:
        before = here.cookies[names.session]
        answer = await submit(
            here, "/account", change_password(PASSWORD, NEW_PASSWORD), action="/account/password"
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account?notice=password-changed"
        after = here.cookies[names.session]
        assert after != before
        assert await services.web_sessions.load(before) is None
        page = await here.get(answer.headers["location"])
        assert page.status_code == 200
        assert "Your password was changed." in page.text
        assert (await there.get("/account")).status_code == 302
    assert [s.key for s in await services.web_sessions.list_for_user(user.id)] == [
        (await services.web_sessions.load(after)).key
    ]
    async with anonymous(services) as http:
        assert (await log_in(http, user.email, NEW_PASSWORD)).status_code == 303
    run_jobs(services)
    assert [m for m in emails_to(services, user.email) if "was changed" in m["Subject"]]


async def test_other_sessions_can_stay_logged_in(services):
    user = await new_user(services)
    async with logged_in(services, user) as here, logged_in(services, user) as there:
        form = change_password(PASSWORD, NEW_PASSWORD, end_others=False)
        assert (await submit(here, "/account", form, action="/account/password")).status_code == 303
        assert (await here.get("/account")).status_code == 200
        assert (await there.get("/account")).status_code == 200


async def test_the_email_changes_only_through_the_link_sent_to_the_new_address(services):
    user = await new_user(services)
    new_email = f"moved-{secrets.token_hex(6)}@example.com"
    async with logged_in(services, user) as http:
        form = {"current_password": PASSWORD, "email": new_email.upper()}
        answer = await submit(http, "/account", form, action="/account/email")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account?notice=email-link-sent"
        assert (await reload(services, user.id)).email == user.email

        run_jobs(services)
        [message] = emails_to(services, new_email)
        assert message["Subject"] == "Confirm your new email address for Ursa"
        link = link_in(message, "/verify-email/")
        page = await http.get(link)
        assert "Confirm your new email address" in page.text
        assert (await reload(services, user.id)).email == user.email

        confirmed = await submit(http, link, {})
        assert confirmed.status_code == 303
        assert confirmed.headers["location"] == "/account?notice=email-changed"
        assert new_email in (await http.get("/account")).text
    assert (await reload(services, user.id)).email == new_email
    run_jobs(services)
    subject = "The email address of your Ursa account was changed"
    [notice] = [m for m in emails_to(services, user.email) if m["Subject"] == subject]
    assert new_email in text_of(notice)  # the old address hears of the move
    async with anonymous(services) as old, anonymous(services) as new:
        assert (await log_in(old, user.email)).status_code == 400
        assert (await log_in(new, new_email)).status_code == 303


async def test_a_taken_address_gets_the_same_answer_and_no_email(services):
    user = await new_user(services)
    taken = await new_user(services)
    async with logged_in(services, user) as http:
        form = {"current_password": PASSWORD, "email": taken.email}
        answer = await submit(http, "/account", form, action="/account/email")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account?notice=email-link-sent"
    run_jobs(services)
    assert [m for m in emails_to(services, taken.email) if "Confirm" in m["Subject"]] == []
    assert (await reload(services, user.id)).email == user.email


async def test_an_address_claimed_before_the_click_is_refused(services):
    user = await new_user(services)
    new_email = f"race-{secrets.token_hex(6)}@example.com"
    async with logged_in(services, user) as http:
        form = {"current_password": PASSWORD, "email": new_email}
        await submit(http, "/account", form, action="/account/email")
        run_jobs(services)
        link = link_in(emails_to(services, new_email)[0], "/verify-email/")
        async with anonymous(services) as stranger:
            await sign_up(stranger, new_email, PASSWORD)
        refused = await submit(http, link, {})
    assert refused.status_code == 409
    assert "belongs to another account" in refused.text
    assert (await reload(services, user.id)).email == user.email
