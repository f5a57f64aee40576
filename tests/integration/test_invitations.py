"""Invitations: the email, the public landing page, accepting, expiry, revoking, rate limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import select

from app.accounts.users import create_user
from app.models import Invitation, Role, User, hash_token
from app.organizations.teams import INVITATION_PER_IP, accept_invitation
from app.services import Services
from tests.conftest import PASSWORD, csrf_token, logged_in, make_client, new_user, random_peer
from tests.integration.jobs import emails_to, run_jobs, text_of
from tests.integration.org_helpers import (
    add_member,
    invitations_of,
    invite,
    move_site,
    new_address,
    own_organization,
    role_in,
    submit,
)

pytestmark = pytest.mark.db


@dataclass(frozen=True)
class Sent:
    """An invitation the owner sent to a new address: its organization, address and link."""

    org_id: int
    address: str
    link: str


@pytest.fixture
async def sent(services, owner, owner_client) -> Sent:
    """A viewer invitation from `owner`'s organization, emailed by the worker."""
    org_id = await own_organization(services, owner)
    address = new_address()
    return Sent(org_id, address, await invite(services, owner_client, org_id, address))


async def accept(http: httpx.AsyncClient, link: str) -> httpx.Response:
    return await http.post(f"{link}/accept", data={"csrf_token": await csrf_token(http, "/orgs")})


async def account_for(services: Services, address: str) -> User:
    """A verified account with the invited address."""
    return await create_user(services.sessions, address, PASSWORD, verified=True)


async def test_an_invited_person_signs_in_accepts_and_reads_the_sites_dashboard(
    services, site_domain
):
    inviter = await new_user(services)
    async with logged_in(services, inviter) as owner_http:
        created = await submit(owner_http, "/orgs", name="Team Rocket")
        org_id = int(created.headers["location"].rsplit("/", 1)[1])
        await move_site(services, site_domain, org_id)
        address = new_address()
        link = await invite(services, owner_http, org_id, f"  {address.upper()} ", "admin")

    email = emails_to(services, address)[-1]
    body = text_of(email)
    assert "Team Rocket" in email["Subject"]
    assert inviter.email in body
    assert "as admin" in body

    async with make_client(services, peer=random_peer(), scheme="https") as http:
        landing = await http.get(link)
        assert landing.status_code == 200
        assert "Team Rocket" in landing.text
        assert "admin" in landing.text
        assert f'href="/login?next={link}"' in landing.text
        assert f'href="/signup?next={link}&amp;email={address}"' in landing.text
        assert "/accept" not in landing.text  # anonymous: no Accept button
        assert "set-cookie" not in landing.headers  # no session for anonymous visitors
        assert landing.headers["cache-control"] == "no-store"

        invitee = await account_for(services, address)
        token = await csrf_token(http, f"/login?next={link}")
        form = {"email": address, "password": PASSWORD, "next": link, "csrf_token": token}
        login = await http.post("/login", data=form)
        assert login.headers["location"] == link

        back = await http.get(f"{link}/accept")  # where a login after an expired session lands
        assert back.status_code == 303
        assert back.headers["location"] == link
        page = await http.get(link)
        assert f'action="{link}/accept"' in page.text
        before = http.cookies.get("__Host-ursa_session")
        accepted = await http.post(
            f"{link}/accept", data={"csrf_token": await csrf_token(http, link)}
        )
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"/orgs/{org_id}"
        assert http.cookies.get("__Host-ursa_session") != before  # session rotated
        assert await services.web_sessions.load(before) is None

        assert await role_in(services, invitee, org_id) is Role.ADMIN
        assert (await http.get(f"/{site_domain}")).status_code == 200
        assert (await http.get(f"/orgs/{org_id}")).status_code == 200
        [row] = await invitations_of(services, org_id)
        assert row.accepted_at is not None
        assert (await http.get(link)).status_code == 410  # a link works once


async def test_a_viewer_cannot_invite_and_a_non_member_gets_404(services, owner):
    org_id = await own_organization(services, owner)
    viewer, stranger = await new_user(services), await new_user(services)
    await add_member(services, viewer, org_id, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        answer = await submit(http, f"/orgs/{org_id}/invitations", email=new_address())
        assert answer.status_code == 403
    async with logged_in(services, stranger) as http:
        answer = await submit(http, f"/orgs/{org_id}/invitations", email=new_address())
        assert answer.status_code == 404
        assert (await http.get(f"/orgs/{org_id}")).status_code == 404
    assert await invitations_of(services, org_id) == []


async def test_an_expired_invitation_is_refused(services, owner_client, sent):
    org_id, address, link = sent.org_id, sent.address, sent.link
    [row] = await invitations_of(services, org_id)
    async with services.sessions() as session:
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        session.add(row)
        await session.commit()

    invitee = await account_for(services, address)
    async with logged_in(services, invitee) as http:
        landing = await http.get(link)
        assert landing.status_code == 410
        assert "expired" in landing.json()["error"]
        answer = await accept(http, link)
        assert answer.status_code == 410
    assert await role_in(services, invitee, org_id) is None


async def test_another_account_cannot_accept_and_is_told_which_address_was_invited(services, sent):
    org_id, address, link = sent.org_id, sent.address, sent.link
    someone_else = await new_user(services)
    async with logged_in(services, someone_else) as http:
        landing = await http.get(link)
        assert landing.status_code == 403
        assert f"This invitation was sent to {address}" in landing.text
        answer = await accept(http, link)
        assert answer.status_code == 403
    assert await role_in(services, someone_else, org_id) is None
    [row] = await invitations_of(services, org_id)
    assert row.accepted_at is None


async def test_opening_the_link_changes_nothing(services, owner_client, sent):
    org_id, address, link = sent.org_id, sent.address, sent.link
    invitee = await account_for(services, address)
    async with logged_in(services, invitee) as http:
        for _ in range(2):
            assert (await http.get(link)).status_code == 200
    assert await role_in(services, invitee, org_id) is None
    [row] = await invitations_of(services, org_id)
    assert row.accepted_at is None


async def test_a_revoked_invitation_link_stops_working(services, owner_client, sent):
    org_id, address, link = sent.org_id, sent.address, sent.link
    page = await owner_client.get(f"/orgs/{org_id}")
    assert address in page.text
    [row] = await invitations_of(services, org_id)

    action = f"/orgs/{org_id}/invitations/{row.id}/revoke"
    form = re.search(rf'action="{action}".*?name="csrf_token" value="([^"]+)"', page.text, re.S)
    assert form, "no revoke form on the organization page"
    revoked = await owner_client.post(action, data={"csrf_token": form[1]})
    assert revoked.status_code == 303
    assert await invitations_of(services, org_id) == []
    assert address not in (await owner_client.get(f"/orgs/{org_id}")).text
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        assert (await http.get(link)).status_code == 404
    again = await submit(owner_client, f"/orgs/{org_id}/invitations/{row.id}/revoke")
    assert again.status_code == 404


async def test_inviting_again_replaces_the_open_invitation(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    address = new_address()
    first = await invite(services, owner_client, org_id, address, "viewer")
    second = await invite(services, owner_client, org_id, address, "admin")
    [row] = await invitations_of(services, org_id)
    assert row.role is Role.ADMIN
    assert row.token_hash == hash_token(second.rsplit("/", 1)[1])  # minted by the worker
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        assert (await http.get(first)).status_code == 404
        assert (await http.get(second)).status_code == 200


async def test_a_member_cannot_be_invited_and_bad_input_is_refused(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    path = f"/orgs/{org_id}/invitations"
    taken = await submit(owner_client, path, email=owner.email.upper(), role="viewer")
    assert taken.status_code == 409
    assert "already a member" in taken.json()["error"]
    assert (
        await submit(owner_client, path, email="not-an-email", role="viewer")
    ).status_code == 400
    assert (await submit(owner_client, path, email=new_address(), role="boss")).status_code == 400
    assert await invitations_of(services, org_id) == []


async def test_a_member_accepting_keeps_their_role(services, sent):
    org_id, address, link = sent.org_id, sent.address, sent.link
    member = await account_for(services, address)
    await add_member(services, member, org_id, Role.ADMIN)  # joined meanwhile, another way
    async with logged_in(services, member) as http:
        answer = await accept(http, link)
        assert answer.status_code == 303
    assert await role_in(services, member, org_id) is Role.ADMIN


async def test_an_unknown_link_is_404_and_the_landing_is_rate_limited(services):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        answers = [
            (await http.get("/invitations/not-a-real-token")).status_code
            for _ in range(INVITATION_PER_IP.limit + 1)
        ]
    assert answers[:-1] == [404] * INVITATION_PER_IP.limit
    assert answers[-1] == 429


async def test_the_worker_sends_nothing_for_a_revoked_invitation(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    address = new_address()
    form = {"email": address, "role": "viewer"}
    assert (await submit(owner_client, f"/orgs/{org_id}/invitations", **form)).status_code == 303
    async with services.sessions() as session:
        row = (await session.exec(select(Invitation).where(Invitation.email == address))).one()
        await session.delete(row)
        await session.commit()
    run_jobs(services)
    assert emails_to(services, address) == []


async def test_two_accepts_at_once_join_once(services, sent):
    invitee = await account_for(services, sent.address)
    token = sent.link.rsplit("/", 1)[1]
    results = await asyncio.gather(
        accept_invitation(services.sessions, token, invitee),
        accept_invitation(services.sessions, token, invitee),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == ["InvitationGone", "int"]
    assert await role_in(services, invitee, sent.org_id) is Role.VIEWER
