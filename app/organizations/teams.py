"""Organizations (teams): creating and renaming them, members and roles, invitations.

Roles rank Owner > Admin > Viewer (`app.organizations.access.ROLE_RANK`); routes check them with
`app.organizations.access.organization_role` before calling in here. An organization always has
an Owner (`_keep_an_owner`), and those awaiting deletion (`deleted_at` set) are invisible here.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.users import founding_rows
from app.addresses.emails import normalize_email
from app.billing.entitlements import ensure_member_slot
from app.cache.ratelimit import Rule, Scope
from app.db import SessionMaker
from app.errors import ClientError, Conflict, Forbidden, InvalidInput, NotFound
from app.models import (
    Invitation,
    Membership,
    Organization,
    Role,
    Site,
    User,
    hash_token,
)
from app.models.columns import utcnow
from app.organizations.access import ROLE_RANK
from app.organizations.locks import lock_organization

MANAGER_ROLES = (Role.OWNER, Role.ADMIN)  # who may add sites and invite
NAME_MAX_LENGTH = 100
TOKEN_BYTES = 32  # as `Invitation.issue`: 256 bits
# The invitation landing and its Accept: a person clicks a link now and then; 30 per 10 minutes
# leaves room for a team behind one address and none for walking through tokens.
INVITATION_PER_IP = Rule("invitation:ip", Scope.IP, limit=30, window_seconds=10 * 60)

LAST_OWNER = (
    "An organization needs at least one owner: make another member an owner first, "
    "then change this role or leave."
)
INVALID_LINK = "This invitation link is not valid. Ask the person who invited you for a new one."
USED_LINK = "This invitation has expired or was already used. Ask for a new one."


class InvitationGone(ClientError):
    """410: the invitation existed but has expired or was accepted."""

    status_code = 410


class OrganizationSummary(NamedTuple):
    organization: Organization
    role: Role
    site_count: int


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    role: Role
    since: dt.datetime


@dataclass(frozen=True)
class PendingInvitation:
    id: int
    email: str
    role: Role
    expires_at: dt.datetime
    expired: bool


class Audience(enum.StrEnum):
    """Who is looking at an invitation's landing page."""

    ANONYMOUS = "anonymous"  # not logged in: log in or sign up first
    INVITEE = "invitee"  # logged in with the invited address: may accept
    OTHER_ACCOUNT = "other_account"  # logged in as someone else: refused (403)


@dataclass(frozen=True)
class InvitationView:
    organization_name: str
    role: Role
    email: str
    audience: Audience


@dataclass(frozen=True)
class InvitationEmail:
    """What the worker needs to write an invitation email (the token exists only here)."""

    to: str
    token: str
    organization_name: str
    inviter_email: str
    role: Role
    expires_at: dt.datetime


# --- input -----------------------------------------------------------------------------------


def clean_name(raw: str) -> str:
    """An organization name: trimmed, 1–100 characters; else `InvalidInput`."""
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("Give the organization a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"An organization name has at most {NAME_MAX_LENGTH} characters.")
    return name


def parse_role(raw: str) -> Role:
    try:
        return Role(raw.strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise InvalidInput(f"{raw!r} is not a role (one of: {choices}).") from None


# --- organizations ---------------------------------------------------------------------------


async def create_organization(sessions: SessionMaker, user: User, name: str) -> Organization:
    """A new organization on the free plan with `user` as its Owner, in one transaction."""
    organization = Organization(name=clean_name(name))
    async with sessions() as session, session.begin():
        session.add(organization)
        await session.flush()
        assert organization.id is not None
        assert user.id is not None
        session.add_all(founding_rows(organization.id, user.id))
    return organization


async def organizations_of(sessions: SessionMaker, user: User) -> list[OrganizationSummary]:
    """The live organizations `user` belongs to, by name, with their role and site count."""
    query = (
        select(Organization, Membership.role, func.count(col(Site.id)))
        .join(Membership, col(Membership.organization_id) == Organization.id)
        .outerjoin(Site, col(Site.organization_id) == Organization.id)
        .where(Membership.user_id == user.id, col(Organization.deleted_at).is_(None))
        .group_by(col(Organization.id), col(Membership.role))
        .order_by(func.lower(Organization.name), col(Organization.id))
    )
    async with sessions() as session:
        rows = (await session.exec(query)).all()
    return [OrganizationSummary(org, Role(role), count) for org, role, count in rows]


async def get_organization(sessions: SessionMaker, organization_id: int) -> Organization:
    async with sessions() as session:
        return await _live(session, organization_id)


async def rename(sessions: SessionMaker, organization_id: int, name: str) -> Organization:
    cleaned = clean_name(name)
    async with sessions() as session, session.begin():
        organization = await _live(session, organization_id)
        organization.name = cleaned
        session.add(organization)
    return organization


async def sites_of(sessions: SessionMaker, organization_id: int) -> list[Site]:
    query = select(Site).where(Site.organization_id == organization_id).order_by(Site.domain)
    async with sessions() as session:
        return list((await session.exec(query)).all())


async def _live(session: AsyncSession, organization_id: int) -> Organization:
    """The organization unless it is missing or awaits deletion (`NotFound`)."""
    query = select(Organization).where(
        Organization.id == organization_id, col(Organization.deleted_at).is_(None)
    )
    organization = (await session.exec(query)).first()
    if organization is None:
        raise NotFound("no such organization")
    return organization


@dataclass(frozen=True)
class OrganizationPage:
    """An organization as one member sees it: members and invitations from Admin up."""

    organization: Organization
    role: Role
    sites: list[Site]
    members: list[Member]
    invitations: list[PendingInvitation]

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER


async def organization_page(
    sessions: SessionMaker, organization_id: int, role: Role
) -> OrganizationPage:
    """The organization page for a member with `role` (checked by the caller)."""
    organization = await get_organization(sessions, organization_id)
    sees_people = ROLE_RANK[role] >= ROLE_RANK[Role.ADMIN]
    return OrganizationPage(
        organization,
        role,
        await sites_of(sessions, organization_id),
        await members(sessions, organization_id) if sees_people else [],
        await pending_invitations(sessions, organization_id) if sees_people else [],
    )


# --- members ---------------------------------------------------------------------------------


async def members(sessions: SessionMaker, organization_id: int) -> list[Member]:
    """Everyone in the organization, owners first, then by email."""
    query = (
        select(Membership, User.email)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.organization_id == organization_id)
    )
    async with sessions() as session:
        rows = (await session.exec(query)).all()
    found = [Member(m.user_id, email, Role(m.role), m.created_at) for m, email in rows]
    return sorted(found, key=lambda member: (-ROLE_RANK[member.role], member.email))


async def change_role(
    sessions: SessionMaker, organization_id: int, user_id: int, role: Role
) -> None:
    """Give a member another role; the last Owner cannot be demoted (`Conflict`)."""
    async with sessions() as session, session.begin():
        await lock_organization(session, organization_id)
        membership = await _membership(session, organization_id, user_id)
        if membership.role is Role.OWNER and role is not Role.OWNER:
            await _keep_an_owner(session, organization_id)
        membership.role = role
        session.add(membership)


async def remove_member(sessions: SessionMaker, organization_id: int, user_id: int) -> None:
    """Take someone out of the organization (or let them leave); never its last Owner."""
    async with sessions() as session, session.begin():
        await lock_organization(session, organization_id)
        membership = await _membership(session, organization_id, user_id)
        if membership.role is Role.OWNER:
            await _keep_an_owner(session, organization_id)
        await session.delete(membership)


async def _membership(session: AsyncSession, organization_id: int, user_id: int) -> Membership:
    query = select(Membership).where(
        Membership.organization_id == organization_id, Membership.user_id == user_id
    )
    membership = (await session.exec(query)).first()
    if membership is None:
        raise NotFound("that person is not a member of this organization")
    return membership


async def _keep_an_owner(session: AsyncSession, organization_id: int) -> None:
    """Raise `Conflict` unless another Owner remains after one Owner steps down (is demoted or
    removed). Callers hold `lock_organization`, so two Owners demoting each other run one after
    the other, and the second is refused."""
    query = select(func.count(col(Membership.id))).where(
        Membership.organization_id == organization_id, Membership.role == Role.OWNER
    )
    if (await session.exec(query)).one() <= 1:
        raise Conflict(LAST_OWNER)


# --- invitations: the organization's side -----------------------------------------------------


async def invite(
    sessions: SessionMaker, organization_id: int, inviter: User, email: str, role: Role
) -> Invitation:
    """An open invitation of `email` with `role`, replacing any open one for that address.

    An invitation is for one normalised address and one role, open for 48 hours, and only its
    token's hash is stored; accepting needs a login with the invited address, and a member keeps
    the role they have.

    `Conflict` if the address already belongs to a member; `PlanLimitReached` when members and
    open invitations already fill the plan's member limit. The caller queues the email
    (`app.tasks.org_jobs.send_invitation`), whose worker mints the token.
    """
    address = normalize_email(email)
    async with sessions() as session, session.begin():
        await lock_organization(session, organization_id)
        member = select(Membership.id).join(User, col(User.id) == Membership.user_id)
        member = member.where(Membership.organization_id == organization_id, User.email == address)
        if (await session.exec(member)).first() is not None:
            raise Conflict(f"{address} is already a member of this organization.")
        await session.exec(
            delete(Invitation).where(
                col(Invitation.organization_id) == organization_id,
                col(Invitation.email) == address,
                col(Invitation.accepted_at).is_(None),
            )
        )
        await ensure_member_slot(session, organization_id)
        invitation, _token = Invitation.issue(organization_id, address, role, inviter.id)
        session.add(invitation)
    return invitation


async def pending_invitations(
    sessions: SessionMaker, organization_id: int
) -> list[PendingInvitation]:
    """Invitations not accepted yet (expired ones too, marked), newest first."""
    query = (
        select(Invitation)
        .where(Invitation.organization_id == organization_id, col(Invitation.accepted_at).is_(None))
        .order_by(col(Invitation.created_at).desc())
    )
    async with sessions() as session:
        rows = (await session.exec(query)).all()
    now = utcnow()
    return [
        PendingInvitation(row.id, row.email, Role(row.role), row.expires_at, row.expires_at <= now)
        for row in rows
        if row.id is not None
    ]


async def revoke_invitation(
    sessions: SessionMaker, organization_id: int, invitation_id: int
) -> None:
    """Delete an open invitation of this organization: its link stops working at once."""
    async with sessions() as session, session.begin():
        invitation = await session.get(Invitation, invitation_id)
        if (
            invitation is None
            or invitation.organization_id != organization_id
            or invitation.accepted_at is not None
        ):
            raise NotFound("no such open invitation")
        await session.delete(invitation)


async def reissue_invitation(sessions: SessionMaker, invitation_id: int) -> InvitationEmail | None:
    """For the worker: a new token for an open invitation (its hash replaces the stored one, so
    only the last link sent works).

    None when the invitation was revoked, accepted, has expired or its organization is gone.
    """
    async with sessions() as session, session.begin():
        invitation = await session.get(Invitation, invitation_id)
        if invitation is None or invitation.accepted_at is not None:
            return None
        if invitation.expires_at <= utcnow():
            return None
        organization = await session.get(Organization, invitation.organization_id)
        if organization is None or organization.deleted_at is not None:
            return None
        inviter = (
            await session.get(User, invitation.invited_by_id) if invitation.invited_by_id else None
        )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        invitation.token_hash = hash_token(token)
        session.add(invitation)
        return InvitationEmail(
            to=invitation.email,
            token=token,
            organization_name=organization.name,
            inviter_email=inviter.email if inviter is not None else "",
            role=Role(invitation.role),
            expires_at=invitation.expires_at,
        )


# --- invitations: the invitee's side ---------------------------------------------------------


async def open_invitation(sessions: SessionMaker, token: str) -> tuple[Invitation, Organization]:
    """The open invitation of a link's token and its organization.

    `NotFound` for an unknown token (or a deleted organization), `InvitationGone` for an
    expired or accepted one; neither message tells anything about the invitation.
    """
    async with sessions() as session:
        return await _open(session, token)


async def _open(session: AsyncSession, token: str) -> tuple[Invitation, Organization]:
    query = (
        select(Invitation, Organization)
        .join(Organization, col(Organization.id) == Invitation.organization_id)
        .where(Invitation.token_hash == hash_token(token), col(Organization.deleted_at).is_(None))
    )
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound(INVALID_LINK)
    invitation, organization = row
    if invitation.accepted_at is not None or invitation.expires_at <= utcnow():
        raise InvitationGone(USED_LINK)
    return invitation, organization


async def invitation_view(
    sessions: SessionMaker, token: str, user_id: int | None
) -> InvitationView:
    """What the landing page shows to whoever opened the link (logged in as `user_id`)."""
    invitation, organization = await open_invitation(sessions, token)
    audience = Audience.ANONYMOUS
    if user_id is not None:
        async with sessions() as session:
            user = await session.get(User, user_id)
        if user is not None and user.deleted_at is None:
            matches = user.email == invitation.email
            audience = Audience.INVITEE if matches else Audience.OTHER_ACCOUNT
    role = Role(invitation.role)
    return InvitationView(organization.name, role, invitation.email, audience)


async def accept_invitation(sessions: SessionMaker, token: str, user: User) -> int:
    """Join the invitation's organization (a member keeps their role); its id.

    `Forbidden` when `user` is not the invited address; the link works once.
    """
    async with sessions() as session, session.begin():
        invitation, organization = await _open(session, token)
        if user.email != invitation.email:
            raise Forbidden(wrong_account(invitation.email))
        # Claim it with a conditional write: of two concurrent accepts, one finds it taken.
        claim = (
            update(Invitation)
            .where(col(Invitation.id) == invitation.id, col(Invitation.accepted_at).is_(None))
            .values(accepted_at=utcnow())
        )
        if (await session.exec(claim)).rowcount != 1:
            raise InvitationGone(USED_LINK)
        assert organization.id is not None
        assert user.id is not None
        query = select(Membership.id).where(
            Membership.organization_id == organization.id, Membership.user_id == user.id
        )
        if (await session.exec(query)).first() is None:
            session.add(
                Membership(user_id=user.id, organization_id=organization.id, role=invitation.role)
            )
    return organization.id


def wrong_account(invited: str) -> str:
    return (
        f"This invitation was sent to {invited}. Log out, then log in (or sign up) with that "
        "address to accept it."
    )


async def manageable_organizations(sessions: SessionMaker, user: User) -> list[Organization]:
    """The live organizations where `user` is an Owner or Admin (who may add sites), by name."""
    query = (
        select(Organization)
        .join(Membership, col(Membership.organization_id) == Organization.id)
        .where(
            Membership.user_id == user.id,
            col(Membership.role).in_(MANAGER_ROLES),
            col(Organization.deleted_at).is_(None),
        )
        .order_by(Organization.name, col(Organization.id))
    )
    async with sessions() as session:
        return list((await session.exec(query)).all())
