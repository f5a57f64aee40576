"""Sign-up, email verification, resending the link, INVITE_ONLY and the sign-up rate limit."""

from __future__ import annotations

import secrets

import httpx
import pytest
from sqlmodel import select

from app.accounts.flows import ACCOUNT_MAIL
from app.accounts.tokens import VERIFY_EMAIL
from app.models import Invitation, Membership, Role, hash_token
from app.services import Services
from tests.conftest import PASSWORD, csrf_token, log_in, make_client, new_user, random_peer
from tests.integration.account_helpers import (
    anonymous,
    expire_tokens,
    reload,
    sign_up,
    stored_user,
    submit,
    tokens_of,
)
from tests.integration.jobs import emails_to, link_in, run_jobs, text_of

pytestmark = pytest.mark.db


def new_address() -> str:
    return f"signup-{secrets.token_hex(6)}@example.com"


async def test_sign_up_then_verify_by_link_then_log_in(services):
    email = new_address()
    async with anonymous(services) as http:
        answer = await sign_up(http, email.upper(), PASSWORD, next_path="/reports?x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signup/sent"
        assert "Check your inbox" in (await http.get("/signup/sent")).text

        user = await stored_user(services, email)
        assert user is not None
        assert user.email_verified_at is None
        refused = await log_in(http, email)
        assert refused.status_code == 400
        assert "Confirm your email address" in refused.text

        run_jobs(services)
        [message] = emails_to(services, email)
        assert message["Subject"] == "Confirm your email address for Ursa"
        assert message.get_body(preferencelist=("html",)) is not None
        link = link_in(message, "/verify-email/")
        assert link.endswith("?next=/reports%3Fx%3D1")

        # Mail scanners fetch links: GET shows a button and changes nothing.
        page = await http.get(link)
        assert page.status_code == 200
        assert f"Confirm {email}" in page.text
        assert (await reload(services, user.id)).email_verified_at is None
        [token] = await tokens_of(services, user.id)
        assert token.purpose == VERIFY_EMAIL
        assert token.used_at is None
        assert token.token_hash == hash_token(link.split("/")[2].split("?")[0])

        confirmed = await submit(http, link, {"next": "/reports?x=1"}, action=link.split("?")[0])
        assert confirmed.status_code == 303, confirmed.text
        assert confirmed.headers["location"] == "/login?next=/reports%3Fx%3D1&notice=email-verified"
        assert (await reload(services, user.id)).email_verified_at is not None

        logged = await log_in(http, email)
        assert logged.status_code == 303


async def test_a_taken_email_gets_the_same_answer_and_its_owner_an_email(services):
    owner = await new_user(services)
    async with anonymous(services) as http:
        taken = await sign_up(http, owner.email.upper(), "another long password")
        fresh = await sign_up(http, new_address(), "another long password")
        assert taken.status_code == fresh.status_code == 303
        assert taken.headers["location"] == fresh.headers["location"] == "/signup/sent"
        assert taken.headers.get("set-cookie") == fresh.headers.get("set-cookie")
    run_jobs(services)
    [message] = emails_to(services, owner.email)
    assert message["Subject"] == "You already have an Ursa account"
    assert "Someone tried to sign up" in text_of(message)
    assert link_in(message, "/login") == "/login"
    assert link_in(message, "/password/forgot") == "/password/forgot"
    async with anonymous(services) as http:  # the password is unchanged
        assert (await log_in(http, owner.email)).status_code == 303


async def test_signing_up_again_while_unverified_resends_the_link(services):
    user = await new_user(services, verified=False)
    async with anonymous(services) as http:
        answer = await sign_up(http, user.email, PASSWORD)
    assert answer.headers["location"] == "/signup/sent"
    run_jobs(services)
    [message] = emails_to(services, user.email)
    assert link_in(message, "/verify-email/")


async def test_bad_input_is_refused_with_a_clear_message_and_no_account(services):
    email = new_address()
    async with anonymous(services) as http:
        short = await sign_up(http, email, "short")
        invalid = await sign_up(http, "not an address", PASSWORD)
    assert short.status_code == invalid.status_code == 400
    assert "at least 10 characters" in short.text
    assert "not a valid email address" in invalid.text
    assert await stored_user(services, email) is None


async def test_unsafe_next_is_dropped(services):
    email = new_address()
    async with anonymous(services) as http:
        await sign_up(http, email, PASSWORD, next_path="//evil.example/")
    run_jobs(services)
    [message] = emails_to(services, email)
    assert "next=" not in link_in(message, "/verify-email/")


async def _invitation_for(services: Services, email: str, *, expired: bool = False) -> None:
    inviter = await new_user(services)
    async with services.sessions() as session:
        query = select(Membership).where(Membership.user_id == inviter.id)
        organization_id = (await session.exec(query)).one().organization_id
        invitation, _ = Invitation.issue(organization_id, email, Role.VIEWER, inviter.id)
        if expired:
            invitation.expires_at = invitation.created_at
        session.add(invitation)
        await session.commit()


async def test_invite_only_refuses_without_an_invitation_and_allows_with_one(services):
    settings = services.settings.model_copy(update={"INVITE_ONLY": True})
    invite_only = Services(settings, gateway=services.clickhouse)
    stranger, expired, invited = new_address(), new_address(), new_address()
    await _invitation_for(services, expired, expired=True)
    await _invitation_for(services, invited)
    try:
        async with make_client(invite_only, peer=random_peer(), scheme="https") as http:
            assert "by invitation only" in (await http.get("/signup")).text
            for email in (stranger, expired):
                refused = await sign_up(http, email, PASSWORD)
                assert refused.status_code == 403
                assert "Sign-up is by invitation only" in refused.text
                assert await stored_user(services, email) is None
            allowed = await sign_up(http, invited.upper(), PASSWORD)
            assert allowed.status_code == 303
    finally:
        await invite_only.aclose()
    assert await stored_user(services, invited) is not None


async def test_resend_answers_the_same_and_mails_only_unverified_accounts(services):
    unverified = await new_user(services, verified=False)
    verified = await new_user(services)
    unknown = new_address()
    async with anonymous(services) as http:
        for email in (unverified.email, verified.email, unknown):
            answer = await submit(http, "/signup/resend", {"email": email})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/signup/sent"
    run_jobs(services)
    assert len(emails_to(services, unverified.email)) == 1
    assert emails_to(services, verified.email) == []
    assert emails_to(services, unknown) == []


async def verification_link(services: Services, http: httpx.AsyncClient, email: str) -> str:
    """Sign up as `email`; the link of the verification email."""
    await sign_up(http, email, PASSWORD)
    run_jobs(services)
    return link_in(emails_to(services, email)[0], "/verify-email/")


async def test_unrequested_emails_to_one_address_are_capped_silently(services):
    user = await new_user(services, verified=False)
    async with anonymous(services) as http:
        answers = [await submit(http, "/signup/resend", {"email": user.email}) for _ in range(4)]
    assert [a.headers["location"] for a in answers] == ["/signup/sent"] * 4
    run_jobs(services)
    assert len(emails_to(services, user.email)) == ACCOUNT_MAIL.limit == 3


async def test_a_verification_link_works_once(services):
    email = new_address()
    async with anonymous(services) as http:
        link = await verification_link(services, http, email)
        assert (await submit(http, link, {})).status_code == 303
        again = await submit(http, "/signup", {}, action=link)
        assert again.status_code == 410
        assert "already been used" in again.text
        assert (await http.get(link)).status_code == 410


async def test_an_expired_or_unknown_link_changes_nothing(services):
    email = new_address()
    async with anonymous(services) as http:
        link = await verification_link(services, http, email)
        user = await stored_user(services, email)
        assert user is not None
        await expire_tokens(services, user.id)
        page = await http.get(link)
        assert page.status_code == 410
        assert "expired" in page.text
        assert 'href="/signup/resend"' in page.text
        posted = await submit(http, "/signup", {}, action=link)
        assert posted.status_code == 410
        assert (await reload(services, user.id)).email_verified_at is None
        assert (await tokens_of(services, user.id))[0].used_at is None

        unknown = await http.get("/verify-email/not-a-real-token")
        assert unknown.status_code == 400
        assert "not valid" in unknown.text


async def test_sign_up_is_rate_limited_per_ip(services):
    async with anonymous(services) as http:
        token = await csrf_token(http, "/signup")
        form = {"email": new_address(), "password": "short", "csrf_token": token}
        statuses = [(await http.post("/signup", data=form)).status_code for _ in range(5)]
        limited = await http.post("/signup", data=form, headers={"accept": "text/html"})
    assert statuses == [400] * 5
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many attempts" in limited.text
