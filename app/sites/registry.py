"""Sites in the app database: registering, finding, changing and deleting them.

A site's allowed hostnames (`app.addresses.hostnames`) say which pages may send it events (empty:
any page); deleting a site queues the erasure of its analytics.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterable

import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.users import get_user_by_email
from app.addresses.hostnames import normalize_domain, normalize_hostname, parse_hostname_lines
from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries import stats
from app.billing.entitlements import ensure_site_slot
from app.db import SessionMaker
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Membership, Organization, Site, User
from app.organizations.teams import manageable_organizations
from app.store.jobs import enqueue


async def add_site(sessions: SessionMaker, domain: str, timezone: str = "UTC") -> Site:
    return await _insert(sessions, Site(domain=normalize_domain(domain), timezone=timezone))


async def _insert(sessions: SessionMaker, site: Site, within_plan: bool = False) -> Site:
    """Store a new site; `Conflict` if its domain is taken (by anyone on this installation).

    `within_plan`: the site takes one of its organization's plan's site slots
    (`ensure_site_slot`)."""
    async with sessions() as session:
        if within_plan and site.organization_id is not None:
            await ensure_site_slot(session, site.organization_id)
        session.add(site)
        try:
            await session.commit()
        except IntegrityError:
            raise Conflict(
                f"{site.domain} is already registered on this Ursa installation"
            ) from None
        await session.refresh(site)
    return site


async def get_site(sessions: SessionMaker, domain: str) -> Site:
    async with sessions() as session:
        site = await _named(session, domain)
    if site is None:
        raise NotFound(f"no site named {domain}")
    return site


async def _named(session: AsyncSession, domain: str) -> Site | None:
    return (await session.exec(select(Site).where(Site.domain == domain))).first()


async def existing_site_ids(sessions: SessionMaker, ids: Iterable[int]) -> set[int]:
    """Those of `ids` that are sites of the app database."""
    wanted = list(ids)
    if not wanted:
        return set()
    async with sessions() as session:
        found = await session.exec(select(Site.id).where(col(Site.id).in_(wanted)))
        return {int(site_id) for site_id in found.all() if site_id is not None}


async def list_sites(sessions: SessionMaker) -> list[Site]:
    async with sessions() as session:
        return list((await session.exec(select(Site).order_by(Site.domain))).all())


async def sites_of_user(sessions: SessionMaker, user: User) -> list[Site]:
    """The sites of every live organization `user` belongs to, by domain."""
    query = (
        select(Site)
        .join(Organization, col(Organization.id) == Site.organization_id)
        .join(Membership, col(Membership.organization_id) == Organization.id)
        .where(Membership.user_id == user.id, col(Organization.deleted_at).is_(None))
        .order_by(Site.domain)
    )
    async with sessions() as session:
        return list((await session.exec(query)).all())


async def update_allowed_hostnames(
    sessions: SessionMaker,
    domain: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    clear: bool = False,
) -> list[str]:
    """Clear, then remove, then add entries (all validated first); return the sorted list.

    `domain` is normalised like `normalize_domain`, so a pasted URL finds its site.
    Removing an entry that is not listed changes nothing. Running ingest processes see the
    change once their site cache expires (`SITE_CACHE_SECONDS`).
    """
    added = {normalize_hostname(entry) for entry in add}
    removed = {normalize_hostname(entry) for entry in remove}
    name = normalize_domain(domain)
    async with sessions() as session:
        site = await _named(session, name)
        if site is None:
            raise NotFound(f"no site named {name}")
        kept = set() if clear else set(site.allowed_hostnames)
        entries = sorted((kept - removed) | added)
        site.allowed_hostnames = entries
        session.add(site)
        await session.commit()
    return entries


# --- managing sites from the web app (authorization is the caller's: app.organizations.access)


@functools.cache
def timezones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted (the settings' choices)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def check_timezone(name: str) -> str:
    """`name` if it is a known IANA time zone; else `InvalidInput`."""
    name = name.strip()
    if name not in _timezone_set():
        raise InvalidInput(f"{name!r} is not a known time zone (examples: UTC, Europe/Berlin)")
    return name


@functools.cache
def _timezone_set() -> frozenset[str]:
    return frozenset(timezones())


def embed_snippet(base_url: str, domain: str) -> str:
    """The one line a site pastes into its pages (HTML; templates escape it for display)."""
    return (
        f'<script defer data-domain="{domain}" src="{base_url.rstrip("/")}/js/script.js"></script>'
    )


async def is_receiving_events(gateway: Gateway, site_id: int) -> bool:
    """Whether ClickHouse holds any event of the site (run in a worker thread)."""
    return await anyio.to_thread.run_sync(stats.has_events, gateway, site_id)


async def register_site(
    sessions: SessionMaker,
    domain: str,
    timezone: str,
    organization_id: int,
    *,
    within_plan: bool = True,
) -> Site:
    """A new site of an organization: domain normalised, time zone checked, domain unique,
    and a site slot left on the organization's plan (`PlanLimitReached` otherwise).

    `within_plan=False` is the operator's `ursa sites add`: the installation's operator, like
    staff, adds sites beyond a customer's plan."""
    site = Site(
        domain=normalize_domain(domain),
        timezone=check_timezone(timezone),
        organization_id=organization_id,
    )
    return await _insert(sessions, site, within_plan)


async def replace_allowed_hostnames(sessions: SessionMaker, domain: str, text: str) -> list[str]:
    """Replace a site's allowed hostnames with the lines of `text`; return the stored list."""
    entries = parse_hostname_lines(text)
    return await update_allowed_hostnames(sessions, domain, add=entries, clear=True)


async def set_timezone(sessions: SessionMaker, site: Site, timezone: str) -> str:
    """Change the site's time zone; events counted before keep the local times they had."""
    name = check_timezone(timezone)
    await update_site(sessions, site, timezone=name)
    return name


async def transfer_site(sessions: SessionMaker, site: Site, organization_id: int) -> None:
    """Move a site (with its data and shared links) to another organization, if the plan of
    that organization has a site slot left (`PlanLimitReached` otherwise)."""
    async with sessions() as session:
        await ensure_site_slot(session, organization_id)
        row = await _stored(session, site)
        row.organization_id = organization_id
        session.add(row)
        await session.commit()


async def update_site(sessions: SessionMaker, site: Site, **values: object) -> None:
    """Set columns of a stored site."""
    async with sessions() as session:
        row = await _stored(session, site)
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        await session.commit()


async def _stored(session: AsyncSession, site: Site) -> Site:
    """The site's row in this session; `NotFound` if it was deleted meanwhile."""
    row = await session.get(Site, site.id)
    if row is None:
        raise NotFound("this site no longer exists")
    return row


def check_deletion_confirmed(site: Site, typed: str) -> None:
    """`InvalidInput` unless `typed` is the site's domain (case and spaces aside)."""
    if typed.strip().lower() != site.domain:
        raise InvalidInput(
            f"Type the domain {site.domain} exactly to confirm the deletion; nothing was deleted."
        )


async def delete_site(sessions: SessionMaker, site: Site, typed: str) -> None:
    """Delete the site (its shared links cascade) and queue the deletion of its ClickHouse rows.

    The row goes first: were the job queued first and the delete then failed, a site would be
    left without its data. Ingest processes stop accepting its events within
    `SITE_CACHE_SECONDS`.
    """
    check_deletion_confirmed(site, typed)
    assert site.id is not None
    async with sessions() as session:
        await session.delete(await _stored(session, site))
        await session.commit()
    enqueue("delete_site_data", site.id)


async def site_owner_organization(sessions: SessionMaker, email: str) -> int:
    """The organization new sites of `email`'s user go to: the first they own or administer."""
    user = await get_user_by_email(sessions, email)
    if user is None or user.deleted_at is not None:
        raise NotFound(f"no user with the email {email}")
    organizations = await manageable_organizations(sessions, user)
    if not organizations or organizations[0].id is None:
        raise NotFound(f"{user.email} owns or administers no organization")
    return organizations[0].id
