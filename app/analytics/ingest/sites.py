"""What ingest knows of a site: `SiteDirectory`, an in-process cache of sites by domain, and
the allowed-hostname rule (`AllowedHostnames`) it checks each event against.

Event hostnames lose their `www.` as they are parsed, so `example.com` also allows
`www.example.com`, and `*.example.com` does not.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.addresses.hostnames import WILDCARD
from app.db import SessionMaker
from app.models import Organization, Site
from app.observability.metrics import SITE_CACHE_HITS, SITE_CACHE_MISSES


async def _accepting(session: AsyncSession, domain: str) -> Site | None:
    """The site, unless its organization awaits deletion (then it accepts no events)."""
    query = (
        select(Site)
        .outerjoin(Organization, col(Organization.id) == Site.organization_id)
        .where(Site.domain == domain, col(Organization.deleted_at).is_(None))
    )
    return (await session.exec(query)).first()


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
    organization_id: int | None = None  # whose plan's capacity the site's events use


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
            ref = SiteRef(site.id, site.domain, site.timezone, hostnames, site.organization_id)
        ttl = self._ttl if ref is not None else min(self._ttl, self.MISSING_TTL_SECONDS)
        self._cache[domain] = (now + ttl, ref)
        self._cache.move_to_end(domain)
        while len(self._cache) > self.MAX_ENTRIES:
            self._cache.popitem(last=False)
        return ref
