"""Sites: normalising domains, registering and finding sites, and their allowed hostnames.

A site's allowed hostnames say which pages may send it events (empty: any page). An entry is a
hostname normalised like a site domain (lowercase, IDN as punycode, no scheme, port, path or
`www.`), or `*.` and such a name for its subdomains at any depth: `*.example.com` allows
`a.example.com` and `b.a.example.com` but not `example.com` itself, which is listed on its own.
Event hostnames lose their `www.` as they are parsed, so `example.com` also allows
`www.example.com`, and `*.example.com` does not.
"""

from __future__ import annotations

import functools
import re
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.analytics import queries
from app.analytics.clickhouse import Gateway
from app.db import SessionMaker
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Membership, Organization, Role, Site, User
from app.observability.metrics import SITE_CACHE_HITS, SITE_CACHE_MISSES

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
WILDCARD = "*."


def normalize_domain(raw: str) -> str:
    """Lowercase, no scheme, no path, no `www.`, IDN as punycode; raise `InvalidInput`."""
    return _checked(_host_part(raw).removeprefix("www."), raw, "domain name", "example.com")


def normalize_hostname(raw: str) -> str:
    """An allowed-hostname entry: a name normalised like a domain, or `*.` + one; else raise."""
    text = _host_part(raw)
    if text.startswith(WILDCARD):
        hint = "*.example.com"
        return WILDCARD + _checked(text.removeprefix(WILDCARD), raw, "hostname pattern", hint)
    return _checked(text.removeprefix("www."), raw, "hostname", "example.com or *.example.com")


def _host_part(raw: str) -> str:
    """Lowercased, without scheme, path, port or trailing dot."""
    text = _SCHEME.sub("", raw.strip().lower())
    return text.split("/", 1)[0].split(":", 1)[0].rstrip(".")


def _checked(text: str, raw: str, kind: str, example: str) -> str:
    """`text` as punycode if it is a valid hostname; else `InvalidInput` naming `raw`."""
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{raw!r} is not a valid {kind}") from None
    if not is_hostname(text):
        raise InvalidInput(f"{raw!r} is not a valid {kind} (example: {example})")
    return text


def is_hostname(name: str) -> bool:
    """Whether an ASCII (punycode) lowercase name has at least two valid DNS labels."""
    labels = name.split(".")
    return (
        len(name) <= 253 and len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)
    )


async def add_site(sessions: SessionMaker, domain: str, timezone: str = "UTC") -> Site:
    return await _insert(sessions, Site(domain=normalize_domain(domain), timezone=timezone))


async def _insert(sessions: SessionMaker, site: Site) -> Site:
    """Store a new site; `Conflict` if its domain is taken (by anyone on this installation)."""
    async with sessions() as session:
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


async def _accepting(session: AsyncSession, domain: str) -> Site | None:
    """The site, unless its organization awaits deletion (then it accepts no events)."""
    query = (
        select(Site)
        .outerjoin(Organization, col(Organization.id) == Site.organization_id)
        .where(Site.domain == domain, col(Organization.deleted_at).is_(None))
    )
    return (await session.exec(query)).first()


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


# --- managing sites from the web app (authorization is the caller's: `app.auth`) -------------

MANAGER_ROLES = (Role.OWNER, Role.ADMIN)
HOSTNAME_LINES_MAX = 100


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
    return await anyio.to_thread.run_sync(queries.has_events, gateway, site_id)


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


async def register_site(
    sessions: SessionMaker, domain: str, timezone: str, organization_id: int
) -> Site:
    """A new site of an organization: domain normalised, time zone checked, domain unique."""
    site = Site(
        domain=normalize_domain(domain),
        timezone=check_timezone(timezone),
        organization_id=organization_id,
    )
    return await _insert(sessions, site)


def parse_hostname_lines(text: str) -> list[str]:
    """One allowed-hostname entry per line (blank lines skipped), normalised and sorted.

    A bad line raises `InvalidInput` naming its number and text, and nothing is changed.
    """
    entries = set()
    lines = text.splitlines()
    if len(lines) > HOSTNAME_LINES_MAX:
        raise InvalidInput(f"At most {HOSTNAME_LINES_MAX} hostnames, one per line.")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.add(normalize_hostname(line))
        except InvalidInput as exc:
            raise InvalidInput(f"Line {number}: {exc}") from None
    return sorted(entries)


async def replace_allowed_hostnames(sessions: SessionMaker, domain: str, text: str) -> list[str]:
    """Replace a site's allowed hostnames with the lines of `text`; return the stored list."""
    entries = parse_hostname_lines(text)
    return await update_allowed_hostnames(sessions, domain, add=entries, clear=True)


async def set_timezone(sessions: SessionMaker, site: Site, timezone: str) -> str:
    """Change the site's time zone; events counted before keep the local times they had."""
    name = check_timezone(timezone)
    await _update(sessions, site, timezone=name)
    return name


async def transfer_site(sessions: SessionMaker, site: Site, organization_id: int) -> None:
    """Move a site (with its data and shared links) to another organization."""
    await _update(sessions, site, organization_id=organization_id)


async def _update(sessions: SessionMaker, site: Site, **values: object) -> None:
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
    from app.tasks.deletion_jobs import delete_site_data  # (it imports app.services → here)

    delete_site_data.send(site.id)


@dataclass(frozen=True, slots=True)
class AllowedHostnames:
    """A site's allowed-hostname entries, split for matching without a loop over them."""

    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # `.example.com` for `*.example.com`

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowedHostnames:
        """From normalised entries (as stored)."""
        exact, suffixes = set(), []
        for entry in entries:
            if entry.startswith(WILDCARD):
                suffixes.append(entry.removeprefix("*"))
            else:
                exact.add(entry)
        return cls(frozenset(exact), tuple(suffixes))

    def allows(self, hostname: str) -> bool:
        """Whether an event hostname (lowercase, as parsed from its URL) may be counted."""
        if not (self.exact or self.suffixes):
            return True
        if not hostname.isascii():
            try:
                hostname = hostname.encode("idna").decode("ascii")
            except UnicodeError:
                return False
        hostname = hostname.rstrip(".")
        return hostname in self.exact or hostname.endswith(self.suffixes)


ANY_HOSTNAME = AllowedHostnames()


@dataclass(frozen=True, slots=True)
class SiteRef:
    """What the ingest path needs to know about a site."""

    id: int
    domain: str
    timezone: str = "UTC"
    hostnames: AllowedHostnames = ANY_HOSTNAME


class SiteDirectory:
    """Site-by-domain lookups for ingestion, cached in process (negative answers too).

    An LRU of `MAX_ENTRIES` domains, each kept for the TTL: a flood of events for unknown
    domains evicts the least recently used entries, not the busy sites' ones.
    """

    MAX_ENTRIES = 10_000

    MISSING_TTL_SECONDS = 5.0  # a site added while events arrive is found within seconds

    def __init__(self, sessions: SessionMaker, ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._cache: OrderedDict[str, tuple[float, SiteRef | None]] = OrderedDict()

    async def lookup(self, domain: str) -> SiteRef | None:
        now = time.monotonic()
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(domain)
            SITE_CACHE_HITS.inc()
            return cached[1]
        SITE_CACHE_MISSES.inc()
        async with self._sessions() as session:
            site = await _accepting(session, domain)
        ref = None
        if site is not None and site.id is not None:
            hostnames = AllowedHostnames.of(site.allowed_hostnames)
            ref = SiteRef(site.id, site.domain, site.timezone, hostnames)
        ttl = self._ttl if ref is not None else min(self._ttl, self.MISSING_TTL_SECONDS)
        self._cache[domain] = (now + ttl, ref)
        self._cache.move_to_end(domain)
        while len(self._cache) > self.MAX_ENTRIES:
            self._cache.popitem(last=False)
        return ref
