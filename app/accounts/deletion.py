"""Deleting an account: soft delete now, destroy after a 72-hour grace period unless cancelled.

A soft delete sets `deleted_at` on the user and, to the same instant, on every live organization
of which the user is the only owner (`_soft_deleted_with`); a cancellation clears both, and the
purge job destroys both once the grace period is over.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio.to_thread
from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.accounts.login import reauthenticate
from app.accounts.tokens import EXPIRED_LINK, UNKNOWN_LINK, USED_LINK, LinkGone
from app.analytics.clickhouse.erase import erase_site
from app.analytics.clickhouse.gateway import ClickHouseError
from app.errors import InvalidInput
from app.models import AccountToken, Membership, Organization, Role, Site, User, hash_token
from app.models.columns import utcnow
from app.services import Services
from app.store.jobs import enqueue

log = logging.getLogger(__name__)

GRACE_HOURS = 72
GRACE_PERIOD = dt.timedelta(hours=GRACE_HOURS)
CANCEL_DELETION = "cancel_deletion"
WRONG_PASSWORD = "That is not your current password. Nothing was changed."  # noqa: S105
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class DoomedOrganization:
    """An organization destroyed with the account, and the domains of its sites."""

    organization: Organization
    domains: list[str]


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting the account destroys, and which organizations just lose the member."""

    destroyed: list[DoomedOrganization]
    left: list[Organization]


@dataclass
class PurgeStats:
    users: int = 0
    organizations: int = 0
    sites: int = 0
    addresses: list[str] = field(default_factory=list)  # for the final emails; never logged


def final_deletion_time(deleted_at: dt.datetime) -> str:
    """When an account soft-deleted at `deleted_at` is destroyed, for people to read."""
    return (deleted_at + GRACE_PERIOD).strftime(TIME_FORMAT)


# --- what deletion affects --------------------------------------------------------------------


async def _sole_owned(session: AsyncSession, user_id: int) -> list[Organization]:
    """Live organizations in which `user_id` is an owner and no one else is."""
    owners = (
        select(Membership.organization_id)
        .where(Membership.role == Role.OWNER)
        .group_by(col(Membership.organization_id))
        .having(func.count() == 1)
    )
    query = _live_organizations_of(user_id).where(
        Membership.role == Role.OWNER, col(Organization.id).in_(owners)
    )
    return list((await session.exec(query)).all())


def _live_organizations_of(user_id: int) -> SelectOfScalar[Organization]:
    """The live organizations `user_id` is a member of, by name."""
    return (
        select(Organization)
        .join(Membership, col(Membership.organization_id) == Organization.id)
        .where(Membership.user_id == user_id, col(Organization.deleted_at).is_(None))
        .order_by(Organization.name)
    )


async def _domains_by_organization(
    session: AsyncSession, organization_ids: Sequence[int]
) -> dict[int, list[str]]:
    query = (
        select(Site.organization_id, Site.domain)
        .where(col(Site.organization_id).in_(organization_ids))
        .order_by(Site.domain)
    )
    found: dict[int, list[str]] = {}
    for organization_id, domain in (await session.exec(query)).all():
        assert organization_id is not None
        found.setdefault(organization_id, []).append(domain)
    return found


async def deletion_plan(services: Services, user: User) -> DeletionPlan:
    """The organizations (with their sites) deleting `user` destroys, and those it leaves."""
    assert user.id is not None
    async with services.sessions() as session:
        destroyed = await _sole_owned(session, user.id)
        ids = [org.id for org in destroyed if org.id is not None]
        domains = await _domains_by_organization(session, ids)
        others = _live_organizations_of(user.id).where(col(Organization.id).not_in(ids))
        left = list((await session.exec(others)).all())
    doomed = [DoomedOrganization(org, domains.get(org.id or 0, [])) for org in destroyed]
    return DeletionPlan(doomed, left)


# --- requesting and cancelling ----------------------------------------------------------------


async def request_deletion(
    services: Services, user: User, password: str, client: str
) -> dt.datetime:
    """Soft-delete `user` and the organizations only they own; end their sessions and queue the
    email with the cancel link. Return the time of final deletion.

    From then on the user cannot log in, every session is ended, the organizations' sites accept
    no events (`SiteDirectory`) and their dashboards are hidden (`site_for_member`).
    Organizations with another owner only lose this member, when the account is destroyed. A
    wrong password (from `client`, an address) is a failed login at the account
    (`app.accounts.login`); it raises `InvalidInput` and changes nothing.
    """
    assert user.id is not None
    await reauthenticate(services, user, password, WRONG_PASSWORD, client)
    now = utcnow()
    async with services.sessions() as session:
        doomed = [org.id for org in await _sole_owned(session, user.id)]
        await session.exec(
            update(Organization).where(col(Organization.id).in_(doomed)).values(deleted_at=now)
        )
        await session.exec(update(User).where(col(User.id) == user.id).values(deleted_at=now))
        await session.commit()
    ended = await services.web_sessions.revoke_all(user.id)
    log.info(
        "account deletion requested: %d organizations soft-deleted, %d sessions ended",
        len(doomed),
        ended,
    )
    enqueue("send_deletion_scheduled", user.id)
    return now + GRACE_PERIOD


async def scheduled_email(services: Services, user_id: int) -> tuple[str, dict[str, str]] | None:
    """Mint the cancel link of a pending deletion: the address and context of its email.

    None when there is nothing to say (the user is gone, or the deletion was cancelled).
    """
    async with services.sessions() as session:
        user = await session.get(User, user_id)
        if user is None or user.deleted_at is None:
            return None
        token = secrets.token_urlsafe(32)
        session.add(
            AccountToken(
                user_id=user_id,
                purpose=CANCEL_DELETION,
                email=user.email,
                token_hash=hash_token(token),
                expires_at=user.deleted_at + GRACE_PERIOD,
            )
        )
        await session.commit()
    context = {
        "deletion_time": final_deletion_time(user.deleted_at),
        "cancel_url": f"{services.settings.BASE_URL}/account/delete/cancel/{token}",
    }
    return user.email, context


async def _open_cancel_token(session: AsyncSession, token: str) -> tuple[AccountToken, User]:
    """The cancel token behind a link and its (soft-deleted) user; 400 unknown, 410 gone."""
    query = (
        select(AccountToken, User)
        .join(User, col(User.id) == AccountToken.user_id)
        .where(AccountToken.token_hash == hash_token(token))
        .with_for_update()
    )
    row = (await session.exec(query)).first()
    if row is None or row[0].purpose != CANCEL_DELETION:
        raise InvalidInput(UNKNOWN_LINK)
    found, user = row
    if found.used_at is not None or user.deleted_at is None:
        raise LinkGone(USED_LINK)
    if found.expires_at <= utcnow() or user.deleted_at + GRACE_PERIOD <= utcnow():
        raise LinkGone(EXPIRED_LINK)
    return found, user


async def check_cancel_link(services: Services, token: str) -> str:
    """The time of final deletion, if `token` may cancel a deletion now; changes nothing."""
    async with services.sessions() as session:
        _, user = await _open_cancel_token(session, token)
    assert user.deleted_at is not None
    return final_deletion_time(user.deleted_at)


def _soft_deleted_with(user: User) -> ColumnElement[bool]:
    """Condition: an organization `user` owns, soft-deleted at the same instant as the user."""
    owned = select(Membership.organization_id).where(
        Membership.user_id == user.id, Membership.role == Role.OWNER
    )
    return col(Organization.id).in_(owned) & (col(Organization.deleted_at) == user.deleted_at)


async def _use_up_cancel_links(session: AsyncSession, user: User) -> None:
    """Close every open cancel link of `user` (a retried email minted several); `LinkGone` if a
    concurrent request closed them first."""
    closed = await session.exec(
        update(AccountToken)
        .where(
            col(AccountToken.user_id) == user.id,
            col(AccountToken.purpose) == CANCEL_DELETION,
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    if closed.rowcount == 0:
        raise LinkGone(USED_LINK)


async def cancel_deletion(services: Services, token: str) -> None:
    """Restore the account and the organizations deleted with it; use up the link (single-use,
    valid until the grace period ends).

    `InvalidInput` (400) for an unknown link, `LinkGone` (410) for a used or expired one.
    """
    async with services.sessions() as session:
        _, user = await _open_cancel_token(session, token)
        await _use_up_cancel_links(session, user)
        restored = await session.exec(
            update(Organization).where(_soft_deleted_with(user)).values(deleted_at=None)
        )
        await session.exec(update(User).where(col(User.id) == user.id).values(deleted_at=None))
        await session.commit()
    log.info(
        "account deletion cancelled: %d organizations restored",
        restored.rowcount,
    )


# --- destroying -------------------------------------------------------------------------------


async def purge_deleted_accounts(services: Services) -> PurgeStats:
    """Destroy every account whose grace period is over, with what was deleted with it.

    In order: the ClickHouse rows of each site, the sites, the organizations (their memberships,
    invitations, billing profile and shared links cascade), then the user (memberships, tokens,
    recovery codes cascade). An account whose analytics cannot be erased now (ClickHouse down)
    is left for the next run. Idempotent and safe to run concurrently: ClickHouse deletions
    match nothing the second time, every row is removed by a DELETE that tolerates missing rows,
    and only the run whose DELETE removed the user queues the final email.
    """
    cutoff = utcnow() - GRACE_PERIOD
    async with services.sessions() as session:
        due = (await session.exec(select(User.id).where(col(User.deleted_at) <= cutoff))).all()
    stats = PurgeStats()
    for user_id in due:
        assert user_id is not None
        try:
            await _purge_user(services, user_id, cutoff, stats)
        except ClickHouseError as exc:
            log.warning("account purge postponed, ClickHouse failed: %s", exc)
    log.info(
        "purged %d accounts, %d organizations, %d sites",
        stats.users,
        stats.organizations,
        stats.sites,
    )
    return stats


async def _purge_user(
    services: Services, user_id: int, cutoff: dt.datetime, stats: PurgeStats
) -> None:
    async with services.sessions() as session:
        user = await session.get(User, user_id)
        if user is None or user.deleted_at is None or user.deleted_at > cutoff:
            return  # purged by a concurrent run, or cancelled
        organizations = (
            await session.exec(select(Organization.id).where(_soft_deleted_with(user)))
        ).all()
        site_ids = (
            await session.exec(select(Site.id).where(col(Site.organization_id).in_(organizations)))
        ).all()
    for site_id in site_ids:  # first: once the sites are gone, nothing names these rows
        assert site_id is not None
        cluster = services.settings.CLICKHOUSE_CLUSTER
        await anyio.to_thread.run_sync(erase_site, services.clickhouse, site_id, cluster)
    async with services.sessions() as session:
        sites = await session.exec(delete(Site).where(col(Site.id).in_(site_ids)))
        orgs = await session.exec(
            delete(Organization).where(col(Organization.id).in_(organizations))
        )
        users = await session.exec(delete(User).where(col(User.id) == user_id))
        await session.commit()
    if users.rowcount == 1:
        stats.users += 1
        stats.organizations += orgs.rowcount
        stats.sites += sites.rowcount
        stats.addresses.append(user.email)
