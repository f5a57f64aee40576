"""Who may see or change a site or an organization: roles, ranked Owner > Admin > Viewer.

Routes ask here (`site_for_member`, `site_for_request`, `organization_role`) before they call
into a domain module; another organization's site is answered like a missing one (404).
Templates never decide who may see what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from app.accounts.request_auth import current_user, request_auth
from app.errors import Forbidden, NotFound
from app.models import Membership, Organization, Role, Site, User
from app.services import Services

ROLE_RANK = {Role.VIEWER: 0, Role.ADMIN: 1, Role.OWNER: 2}


@dataclass(frozen=True)
class SiteAccess:
    site: Site
    role: Role


async def site_for_member(
    services: Services, user: User, domain: str, at_least: Role = Role.VIEWER
) -> SiteAccess:
    """The site, if `user` belongs to its (live) organization with `at_least` this role.

    Another organization's site is answered like a missing one (404): its existence is not
    revealed. A member whose role is too low gets 403.
    """
    row = await _first_row(services, _member_site(domain, user.id))
    if row is None:
        raise NotFound(f"no site named {domain}")
    return _access(row, at_least)


async def site_for_request(
    request: Request[Any, Any, Any], services: Services, domain: str, at_least: Role = Role.VIEWER
) -> SiteAccess:
    """`site_for_member` for the logged-in user of `request`, without `current_user` first.

    One query finds the site when the user is live and a member, which is what a dashboard
    request is; only when it finds nothing are `current_user` and `site_for_member` asked in
    turn, so a deleted user still ends up logged out and a non-member still gets 404.
    """
    user_id = request_auth(request).user_id
    query = (
        _member_site(domain, user_id)
        .join(User, col(User.id) == Membership.user_id)
        .where(col(User.deleted_at).is_(None))
    )
    row = await _first_row(services, query)
    if row is None:
        return await site_for_member(
            services, await current_user(request, services), domain, at_least
        )
    return _access(row, at_least)


def _member_site(domain: str, user_id: int | None) -> Select[Site, str]:
    """The site named `domain` and the user's role in its live organization."""
    return (
        select(Site, Membership.role)
        .join(Organization, col(Organization.id) == Site.organization_id)
        .join(Membership, col(Membership.organization_id) == Organization.id)
        .where(
            Site.domain == domain,
            Membership.user_id == user_id,
            col(Organization.deleted_at).is_(None),
        )
    )


async def _first_row(services: Services, query: Select[Site, str]) -> tuple[Site, str] | None:
    async with services.sessions() as session:
        return (await session.exec(query)).first()


def _access(row: tuple[Site, str], at_least: Role) -> SiteAccess:
    site, role = row[0], Role(row[1])
    if ROLE_RANK[role] < ROLE_RANK[at_least]:
        raise Forbidden(f"this needs the {at_least.value} role in the site's organization")
    return SiteAccess(site, role)


async def organization_role(
    services: Services, user: User, organization_id: int, at_least: Role = Role.VIEWER
) -> Role:
    """The user's role in a live organization; 404 for a non-member, 403 below `at_least`."""
    query = (
        select(Membership.role)
        .join(Organization, col(Organization.id) == Membership.organization_id)
        .where(
            Membership.organization_id == organization_id,
            Membership.user_id == user.id,
            col(Organization.deleted_at).is_(None),
        )
    )
    async with services.sessions() as session:
        role = (await session.exec(query)).first()
    if role is None:
        raise NotFound("no such organization")
    if ROLE_RANK[Role(role)] < ROLE_RANK[at_least]:
        raise Forbidden(f"this needs the {at_least.value} role in the organization")
    return Role(role)
