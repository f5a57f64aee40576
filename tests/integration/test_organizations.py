"""Organizations: creating and renaming them, listing them, member roles, leaving, the last Owner."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from app.models import BillingProfile, Organization, Role
from app.organizations.teams import LAST_OWNER, change_role, organizations_of
from tests.conftest import logged_in, new_user
from tests.integration.org_helpers import add_member, own_organization, role_in, submit

pytestmark = pytest.mark.db

SESSION_COOKIE = "__Host-ursa_session"


async def test_creating_an_organization_makes_the_creator_its_owner_on_the_free_plan(
    services, owner, owner_client
):
    created = await submit(owner_client, "/orgs", name="  Acme   Analytics  ")
    assert created.status_code == 303
    org_id = int(created.headers["location"].removeprefix("/orgs/"))
    async with services.sessions() as session:
        organization = await session.get(Organization, org_id)
        billing = (
            await session.exec(
                select(BillingProfile).where(BillingProfile.organization_id == org_id)
            )
        ).one()
    assert organization is not None
    assert organization.name == "Acme Analytics"
    assert billing.plan_code == "free"
    assert await role_in(services, owner, org_id) is Role.OWNER

    summaries = {
        org.id: (org.name, role, sites)
        for org, role, sites in await organizations_of(services.sessions, owner)
    }
    own = await own_organization(services, owner)
    assert summaries == {
        own: (owner.email.split("@")[0], Role.OWNER, 1),  # owns the `site_domain` site
        org_id: ("Acme Analytics", Role.OWNER, 0),
    }
    listing = await owner_client.get("/orgs")
    assert listing.status_code == 200
    assert f'<a href="/orgs/{org_id}">Acme Analytics</a>' in listing.text
    assert listing.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_an_organization_needs_a_name_of_1_to_100_characters(services, owner, name):
    before = await organizations_of(services.sessions, owner)
    async with logged_in(services, owner) as http:
        answer = await submit(http, "/orgs", name=name)
    assert answer.status_code == 400
    assert "name" in answer.json()["error"]
    assert len(await organizations_of(services.sessions, owner)) == len(before)


async def test_only_an_owner_renames_the_organization(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    admin = await new_user(services)
    await add_member(services, admin, org_id, Role.ADMIN)
    async with logged_in(services, admin) as http:
        assert (await submit(http, f"/orgs/{org_id}/name", name="Hijacked")).status_code == 403
    assert (await submit(owner_client, f"/orgs/{org_id}/name", name="Blue Team")).status_code == 303
    async with services.sessions() as session:
        organization = await session.get(Organization, org_id)
    assert organization is not None
    assert organization.name == "Blue Team"


async def test_admins_see_members_and_viewers_do_not(services, owner):
    org_id = await own_organization(services, owner)
    admin, viewer = await new_user(services), await new_user(services)
    await add_member(services, admin, org_id, Role.ADMIN)
    await add_member(services, viewer, org_id, Role.VIEWER)
    async with logged_in(services, admin) as http:
        page = (await http.get(f"/orgs/{org_id}")).text
        assert owner.email in page
        assert viewer.email in page
        assert f"/orgs/{org_id}/members/{viewer.id}/role" not in page  # no owner forms
    async with logged_in(services, viewer) as http:
        page = (await http.get(f"/orgs/{org_id}")).text
        assert owner.email not in page
        assert "Your role: Viewer" in page


async def test_an_owner_changes_a_members_role_and_others_may_not(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    admin, viewer = await new_user(services), await new_user(services)
    await add_member(services, admin, org_id, Role.ADMIN)
    await add_member(services, viewer, org_id, Role.VIEWER)
    path = f"/orgs/{org_id}/members/{viewer.id}/role"

    async with logged_in(services, admin) as http:
        assert (await submit(http, path, role="admin")).status_code == 403
    assert await role_in(services, viewer, org_id) is Role.VIEWER

    assert (await submit(owner_client, path, role="admin")).status_code == 303
    assert await role_in(services, viewer, org_id) is Role.ADMIN
    assert (await submit(owner_client, path, role="superuser")).status_code == 400
    stranger = await new_user(services)
    missing = await submit(owner_client, f"/orgs/{org_id}/members/{stranger.id}/role", role="admin")
    assert missing.status_code == 404


async def test_the_last_owner_can_be_neither_demoted_nor_removed(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    demote = await submit(owner_client, f"/orgs/{org_id}/members/{owner.id}/role", role="admin")
    assert demote.status_code == 409
    assert demote.json()["error"] == LAST_OWNER
    leave = await submit(owner_client, f"/orgs/{org_id}/members/{owner.id}/remove")
    assert leave.status_code == 409
    assert await role_in(services, owner, org_id) is Role.OWNER


async def test_an_owner_steps_down_once_another_owner_exists_and_the_session_rotates(
    services, owner, owner_client
):
    org_id = await own_organization(services, owner)
    successor = await new_user(services)
    await add_member(services, successor, org_id, Role.VIEWER)
    promote = f"/orgs/{org_id}/members/{successor.id}/role"
    assert (await submit(owner_client, promote, role="owner")).status_code == 303

    before = owner_client.cookies[SESSION_COOKIE]
    demote = await submit(owner_client, f"/orgs/{org_id}/members/{owner.id}/role", role="viewer")
    assert demote.status_code == 303
    assert await role_in(services, owner, org_id) is Role.VIEWER
    assert owner_client.cookies[SESSION_COOKIE] != before
    assert await services.web_sessions.load(before) is None
    # Now a viewer: the owner's forms are refused.
    assert (await submit(owner_client, promote, role="viewer")).status_code == 403


async def test_a_member_leaves_and_loses_access(services, owner, site_domain):
    org_id = await own_organization(services, owner)
    viewer = await new_user(services)
    await add_member(services, viewer, org_id, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        assert (await http.get(f"/{site_domain}")).status_code == 200
        before = http.cookies[SESSION_COOKIE]
        left = await submit(http, f"/orgs/{org_id}/members/{viewer.id}/remove")
        assert left.status_code == 303
        assert left.headers["location"] == "/orgs"
        assert http.cookies[SESSION_COOKIE] != before
        assert (await http.get(f"/{site_domain}")).status_code == 404
        assert (await http.get(f"/orgs/{org_id}")).status_code == 404
    assert await role_in(services, viewer, org_id) is None


async def test_an_owner_removes_a_member_and_a_viewer_cannot(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    viewer, admin = await new_user(services), await new_user(services)
    await add_member(services, viewer, org_id, Role.VIEWER)
    await add_member(services, admin, org_id, Role.ADMIN)
    async with logged_in(services, viewer) as http:
        refused = await submit(http, f"/orgs/{org_id}/members/{admin.id}/remove")
        assert refused.status_code == 403
    removed = await submit(owner_client, f"/orgs/{org_id}/members/{admin.id}/remove")
    assert removed.status_code == 303
    assert removed.headers["location"] == f"/orgs/{org_id}"
    assert await role_in(services, admin, org_id) is None
    assert await role_in(services, viewer, org_id) is Role.VIEWER


async def test_a_non_member_gets_404_everywhere(services, owner):
    org_id = await own_organization(services, owner)
    stranger = await new_user(services)
    async with logged_in(services, stranger) as http:
        assert (await http.get(f"/orgs/{org_id}")).status_code == 404
        assert (await submit(http, f"/orgs/{org_id}/name", name="Mine")).status_code == 404
        leave = await submit(http, f"/orgs/{org_id}/members/{stranger.id}/remove")
        assert leave.status_code == 404
        assert (await http.get("/orgs/999999999")).status_code == 404


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(services, owner):
    org_id = await own_organization(services, owner)
    other = await new_user(services)
    await add_member(services, other, org_id, Role.OWNER)
    ids = [user.id for user in (owner, other) if user.id is not None]
    results = await asyncio.gather(
        *(change_role(services.sessions, org_id, user_id, Role.VIEWER) for user_id in ids),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == ["Conflict", "NoneType"]
    roles = {await role_in(services, owner, org_id), await role_in(services, other, org_id)}
    assert roles == {Role.OWNER, Role.VIEWER}
