"""Sites: normalising domains, registering and finding sites, and their allowed hostnames.

A site's allowed hostnames say which pages may send it events (empty: any page). An entry is a
hostname normalised like a site domain (lowercase, IDN as punycode, no scheme, port, path or
`www.`), or `*.` and such a name for its subdomains at any depth: `*.example.com` allows
`a.example.com` and `b.a.example.com` but not `example.com` itself, which is listed on its own.
Event hostnames lose their `www.` as they are parsed, so `example.com` also allows
`www.example.com`, and `*.example.com` does not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Membership, Organization, Site, User

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
    site = Site(domain=normalize_domain(domain), timezone=timezone)
    async with sessions() as session:
        session.add(site)
        try:
            await session.commit()
        except IntegrityError:
            raise Conflict(f"site {site.domain} already exists") from None
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
    """Site-by-domain lookups for ingestion, cached in process (negative answers too)."""

    MAX_ENTRIES = 10_000

    MISSING_TTL_SECONDS = 5.0  # a site added while events arrive is found within seconds

    def __init__(self, sessions: SessionMaker, ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, SiteRef | None]] = {}

    async def lookup(self, domain: str) -> SiteRef | None:
        now = time.monotonic()
        cached = self._cache.get(domain)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._sessions() as session:
            site = await _accepting(session, domain)
        ref = None
        if site is not None and site.id is not None:
            hostnames = AllowedHostnames.of(site.allowed_hostnames)
            ref = SiteRef(site.id, site.domain, site.timezone, hostnames)
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        ttl = self._ttl if ref is not None else min(self._ttl, self.MISSING_TTL_SECONDS)
        self._cache[domain] = (now + ttl, ref)
        return ref
