"""Sites: normalising domains, registering and finding sites."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.db import SessionMaker
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Site

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_domain(raw: str) -> str:
    """Lowercase, no scheme, no path, no `www.`, IDN as punycode; raise `InvalidInput`."""
    text = raw.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text).split("/", 1)[0].split(":", 1)[0]
    text = text.removeprefix("www.").rstrip(".")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{raw!r} is not a valid domain name") from None
    if not is_hostname(text):
        raise InvalidInput(f"{raw!r} is not a valid domain name (example: example.com)")
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
        site = (await session.exec(select(Site).where(Site.domain == domain))).first()
    if site is None:
        raise NotFound(f"no site named {domain}")
    return site


async def list_sites(sessions: SessionMaker) -> list[Site]:
    async with sessions() as session:
        return list((await session.exec(select(Site).order_by(Site.domain))).all())


@dataclass(frozen=True, slots=True)
class SiteRef:
    """What the ingest path needs to know about a site."""

    id: int
    domain: str
    timezone: str = "UTC"


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
            site = (await session.exec(select(Site).where(Site.domain == domain))).first()
        ref = None
        if site is not None and site.id is not None:
            ref = SiteRef(site.id, site.domain, site.timezone)
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        ttl = self._ttl if ref is not None else min(self._ttl, self.MISSING_TTL_SECONDS)
        self._cache[domain] = (now + ttl, ref)
        return ref
