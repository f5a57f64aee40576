"""Deleting an account: soft delete with the password, cancel by the emailed link, purge later."""

from __future__ import annotations

import asyncio
import datetime as dt
import html

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from app.accounts import deletion as account_deletion
from app.analytics.clickhouse.erase import SITE_TABLES
from app.cache.ratelimit import LOGIN_PER_ACCOUNT
from app.models import Membership, Organization, Role, Site, User
from app.models.columns import utcnow
from app.services import Services
from app.sites.registry import add_site
from app.tasks.deletion_jobs import purge_deleted_accounts
from tests.conftest import (
    PASSWORD,
    csrf_token,
    join,
    log_in,
    logged_in,
    make_client,
    new_user,
    random_peer,
)
from tests.integration.helpers import post_event
from tests.integration.jobs import emails_to, link_in, run_jobs, text_of
from tests.integration.site_rows import record_traffic, row_counts, site_id_of

pytestmark = pytest.mark.db


async def _request(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_token(client, "/account/delete")
    form = {"current_password": password, "csrf_token": token}
    return await client.post("/account/delete", data=form)


async def _dropped_as(services: Services, domain: str) -> str | None:
    """Post a page view for `domain`; the reason it was dropped, None when accepted."""
    async with make_client(services) as http:
        response = await post_event(http, {"n": "pageview", "u": f"https://{domain}/", "d": domain})
    assert response.status_code == 202
    dropped: str | None = response.headers.get("x-ursa-dropped")
    return dropped


async def _user(services: Services, user_id: int | None) -> User | None:
    async with services.sessions() as session:
        return await session.get(User, user_id)


async def _organization_of(services: Services, domain: str) -> Organization | None:
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == domain))).one()
        return await session.get(Organization, site.organization_id)


async def _shared_organization(services: Services, member: User) -> tuple[str, User]:
    """A site of another user's organization in which `member` is a second owner."""
    other = await new_user(services)
    site = await add_site(services.sessions, f"shared-{other.id}-{utcnow().timestamp():.0f}.test")
    async with services.sessions() as session:
        membership = (
            await session.exec(select(Membership).where(Membership.user_id == other.id))
        ).one()
        site.organization_id = membership.organization_id
        session.add(site)
        await session.commit()
    await join(services, member, site.domain, Role.OWNER)
    return site.domain, other


async def _age_deletion(services: Services, user: User, hours: float) -> None:
    """Move the user's deletion (and its organizations') `hours` into the past."""
    async with services.sessions() as session:
        current = await session.get(User, user.id)
        assert current is not None
        assert current.deleted_at is not None
        earlier = current.deleted_at - dt.timedelta(hours=hours)
        await session.exec(
            update(Organization)
            .where(col(Organization.deleted_at) == current.deleted_at)
            .values(deleted_at=earlier)
        )
        current.deleted_at = earlier
        session.add(current)
        await session.commit()


async def test_the_page_lists_what_is_destroyed_and_what_is_only_left(
    services, owner, owner_client, site_domain
):
    shared_domain, _ = await _shared_organization(services, owner)
    page = await owner_client.get("/account/delete")
    assert page.status_code == 200
    destroyed, left = page.text.split('id="deletion-left"')
    own, shared = (
        await _organization_of(services, site_domain),
        await _organization_of(services, shared_domain),
    )
    assert own is not None
    assert shared is not None
    assert site_domain in destroyed
    assert html.escape(own.name) in destroyed
    assert shared_domain not in page.text  # that organization keeps its sites
    assert html.escape(shared.name) in left
    assert "72 hours" in page.text


async def test_a_wrong_password_changes_nothing(services, owner, owner_client, site_domain):
    response = await _request(owner_client, "not the password")
    assert response.status_code == 400
    assert account_deletion.WRONG_PASSWORD.replace("'", "&#39;") in response.text
    stored = await _user(services, owner.id)
    assert stored is not None
    assert stored.deleted_at is None
    assert (await owner_client.get("/account/delete")).status_code == 200  # still logged in
    assert await _dropped_as(services, site_domain) is None


async def test_wrong_passwords_count_as_failed_logins(services, owner, owner_client):
    # Logging in did not count: only failures do, and these are failed logins at the account.
    limit = LOGIN_PER_ACCOUNT.limit
    guesses = [(await _request(owner_client, "guess")).status_code for _ in range(limit)]
    assert guesses == [400] * limit
    # This address now gets 429 wherever the password is asked (the deletion form itself has
    # reached ACCOUNT_CHANGE_PER_USER too).
    token = await csrf_token(owner_client, "/account/security")
    setup = await owner_client.post(
        "/account/2fa/setup", data={"password": PASSWORD, "csrf_token": token}
    )
    assert setup.status_code == 429
    stored = await _user(services, owner.id)
    assert stored is not None
    assert stored.deleted_at is None


async def test_deletion_closes_the_account_and_the_email_link_cancels_it(
    services, owner, owner_client, site_domain
):
    async with logged_in(services, owner) as elsewhere:
        response = await _request(owner_client)
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/account/delete/scheduled",
        )
        assert "will be destroyed" in (await owner_client.get("/account/delete/scheduled")).text
        for client in (owner_client, elsewhere):  # every session ended
            page = await client.get("/account/delete")
            assert (page.status_code, page.headers["location"]) == (
                302,
                "/login?next=/account/delete",
            )
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        assert (await log_in(http, owner.email)).status_code == 400
    assert await _dropped_as(services, site_domain) == "unknown_site"
    organization = await _organization_of(services, site_domain)
    assert organization is not None
    assert organization.deleted_at is not None

    run_jobs(services)
    [email] = emails_to(services, owner.email)[-1:]
    assert email["Subject"] == "Your Ursa account will be deleted"
    stored = await _user(services, owner.id)
    assert stored is not None
    assert stored.deleted_at is not None
    assert account_deletion.final_deletion_time(stored.deleted_at) in text_of(email)
    link = link_in(email, "/account/delete/cancel/")

    async with make_client(services, peer=random_peer(), scheme="https") as http:
        page = await http.get(link)
        assert page.status_code == 200
        assert "Cancel the deletion" in page.text
        assert await _user(services, owner.id) == stored  # looking changed nothing
        token = await csrf_token(http, link)
        cancelled = await http.post(link, data={"csrf_token": token})
        assert (cancelled.status_code, cancelled.headers["location"]) == (
            303,
            "/login?notice=deletion-cancelled",
        )
        assert (await http.post(link, data={"csrf_token": token})).status_code == 410
        assert (await log_in(http, owner.email)).status_code == 303
    assert await _dropped_as(services, site_domain) is None
    organization = await _organization_of(services, site_domain)
    assert organization is not None
    assert organization.deleted_at is None


async def test_an_unknown_cancel_link_is_refused(services):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        page = await http.get("/account/delete/cancel/nonsense")
    assert page.status_code == 400
    assert "not valid" in page.text


async def test_an_expired_cancel_link_is_gone(services, owner, owner_client):
    await _request(owner_client)
    run_jobs(services)
    link = link_in(emails_to(services, owner.email)[-1], "/account/delete/cancel/")
    await _age_deletion(services, owner, 72.5)
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        assert (await http.get(link)).status_code == 410


async def test_the_purge_destroys_the_account_after_72_hours(
    services, client, owner, owner_client, site_domain
):
    await record_traffic(services, client, site_domain)
    site_id = await site_id_of(services, site_domain)
    organization = await _organization_of(services, site_domain)
    assert organization is not None
    shared_domain, other_owner = await _shared_organization(services, owner)
    await record_traffic(services, client, shared_domain)
    shared_id = await site_id_of(services, shared_domain)
    await _request(owner_client)

    await _age_deletion(services, owner, 71)
    purged = await account_deletion.purge_deleted_accounts(services)
    assert owner.email not in purged.addresses  # not yet
    assert await _user(services, owner.id) is not None

    await _age_deletion(services, owner, 2)
    purge_deleted_accounts.send()
    run_jobs(services)

    assert await _user(services, owner.id) is None
    async with services.sessions() as session:
        assert await session.get(Organization, organization.id) is None
        assert (await session.exec(select(Site).where(Site.id == site_id))).first() is None
        memberships = (
            await session.exec(select(Membership.user_id).where(Membership.user_id == owner.id))
        ).all()
        assert memberships == []
    assert row_counts(services, site_id) == dict.fromkeys(SITE_TABLES, 0)
    assert all(row_counts(services, shared_id).values())  # the other organization keeps all
    shared = await _organization_of(services, shared_domain)
    assert shared is not None
    assert shared.deleted_at is None
    assert await _dropped_as(services, shared_domain) is None
    [final] = emails_to(services, owner.email)[-1:]
    assert final["Subject"] == "Your Ursa account has been deleted"
    async with services.sessions() as session:
        kept = select(Membership).where(Membership.organization_id == shared.id)
        assert [m.user_id for m in (await session.exec(kept)).all()] == [other_owner.id]

    assert (await account_deletion.purge_deleted_accounts(services)).users == 0  # idempotent


async def test_concurrent_purges_destroy_the_account_once(services, owner, owner_client):
    await _request(owner_client)
    await _age_deletion(services, owner, 73)

    runs = await asyncio.gather(
        account_deletion.purge_deleted_accounts(services),
        account_deletion.purge_deleted_accounts(services),
    )

    assert sum(run.addresses.count(owner.email) for run in runs) == 1
    assert await _user(services, owner.id) is None
