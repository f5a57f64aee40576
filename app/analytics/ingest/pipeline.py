"""The ingest pipeline of the web process: an ordered list of small steps over one `Ingest`.

Each step enriches the event or drops it with a reason from `Drop`; drops are counted per
reason. After the last step the IP address is gone and the events are in the Redis stream.
Engagement beacons take the same steps as events (the worker stores them apart: `enrich`).

    parse (route) → sites → hostnames → bots → caps → capacity → visitor ids → location
        → discard IP → buffer

The capacity step asks the plan's capacity rule through `CapacityCheck` (implemented by
`app.billing.capacity_cache`), whose answers are held in process: the usual event costs no
network round trip there.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from app.analytics.buffer.stream import BufferedEvent, EventBuffer
from app.analytics.ingest.bots import is_bot
from app.analytics.ingest.caps import MinuteCounter
from app.analytics.ingest.geo import UNKNOWN, Location, Locator
from app.analytics.ingest.ids import make_id
from app.analytics.ingest.payload import IncomingEvent
from app.analytics.ingest.sites import SiteDirectory, SiteRef
from app.analytics.ingest.visitor import Salts, identity_hash, visitor_identity
from app.analytics.queries.periods import utc_offset_minutes
from app.observability.metrics import EVENTS_BUFFERED, EVENTS_DROPPED, EVENTS_RECEIVED


class Drop(StrEnum):
    """Why an accepted event was not stored (sent back in `x-ursa-dropped`)."""

    UNKNOWN_SITE = "unknown_site"
    HOSTNAME = "hostname"  # the URL's hostname is not allowed by any of the event's sites
    BOT = "bot"
    RATE = "rate"  # over an abuse cap (`caps`): per client or per site and minute
    OVER_LIMIT = "over_limit"  # the organization's grace period ended over its plan's limit


class CapacityCheck(Protocol):
    """May a site's organization still collect events (`app.billing.capacity`)?"""

    def cached(self, site: SiteRef) -> bool | None:
        """The answer held in process; None when it must be fetched (`has_enough_capacity`)."""

    async def has_enough_capacity(self, site: SiteRef) -> bool: ...

    def note_refused(self, site: SiteRef) -> None:
        """Count one event of the site refused (the billing page shows how many)."""


class NoCapacityRule:
    """Every site may collect: a pipeline built without the billing side (tests that replay
    generated traffic through the steps)."""

    def cached(self, site: SiteRef) -> bool | None:
        return True

    async def has_enough_capacity(self, site: SiteRef) -> bool:
        return True

    def note_refused(self, site: SiteRef) -> None:
        return None


@dataclass
class Ingest:
    event: IncomingEvent
    user_agent: str
    ip: str | None
    received: dt.datetime
    sites: list[SiteRef] = field(default_factory=list)
    visitor_ids: dict[int, tuple[int, int]] = field(default_factory=dict)
    location: Location = UNKNOWN


DROPPED_BY_REASON = {reason: EVENTS_DROPPED.labels(reason=reason.value) for reason in Drop}

# A step that never waits is a plain function: `run` only awaits the steps that go to the app
# database or Redis, so the others cost no coroutine per request. A step may also decide per
# event, returning an awaitable only when it must wait (`check_capacity`).
Step = Callable[[Ingest], Drop | Awaitable[Drop | None] | None]


class Pipeline:
    def __init__(
        self,
        sites: SiteDirectory,
        salts: Salts,
        locator: Locator,
        buffer: EventBuffer,
        caps: tuple[MinuteCounter, MinuteCounter] = (MinuteCounter(0), MinuteCounter(0)),
        capacity: CapacityCheck | None = None,
    ) -> None:
        self.sites = sites
        self.salts = salts
        self.locator = locator
        self.buffer = buffer
        self.client_cap, self.site_cap = caps
        self.capacity = capacity or NoCapacityRule()
        self.dropped: Counter[Drop] = Counter()
        self.steps: list[Step] = [
            self.find_sites,
            self.check_hostnames,
            self.filter_bots,
            self.enforce_caps,
            self.check_capacity,
            self.hash_visitor,
            self.locate,
            self.discard_ip,
            self.append_to_buffer,
        ]

    async def run(self, ingest: Ingest) -> Drop | None:
        EVENTS_RECEIVED.inc()
        for step in self.steps:
            result = step(ingest)
            reason = result if result is None or isinstance(result, Drop) else await result
            if reason is not None:
                self.dropped[reason] += 1
                DROPPED_BY_REASON[reason].inc()
                return reason
        return None

    async def find_sites(self, ingest: Ingest) -> Drop | None:
        for domain in ingest.event.domains:
            site = await self.sites.lookup(domain)
            if site is not None:
                ingest.sites.append(site)
        return None if ingest.sites else Drop.UNKNOWN_SITE

    def check_hostnames(self, ingest: Ingest) -> Drop | None:
        """Keep the sites whose allowed hostnames include the event's (a cached set lookup)."""
        hostname = ingest.event.hostname
        for site in ingest.sites:
            if not site.hostnames.allows(hostname):
                break
        else:
            return None  # the usual case, without building a list
        ingest.sites = [site for site in ingest.sites if site.hostnames.allows(hostname)]
        return None if ingest.sites else Drop.HOSTNAME

    def filter_bots(self, ingest: Ingest) -> Drop | None:
        return Drop.BOT if is_bot(ingest.user_agent) else None

    def enforce_caps(self, ingest: Ingest) -> Drop | None:
        """Drop what one client or one site sends past its per-minute cap."""
        if not self.client_cap.allow(ingest.ip):
            return Drop.RATE
        if all(self.site_cap.allow(site.id) for site in ingest.sites):
            return None
        return Drop.RATE

    def check_capacity(self, ingest: Ingest) -> Drop | Awaitable[Drop | None] | None:
        """Keep the sites whose organization may still collect; an answer not held in process
        is fetched (`_fetch_capacity`), at most once per organization every few seconds."""
        answers = [self.capacity.cached(site) for site in ingest.sites]
        if None in answers:
            return self._fetch_capacity(ingest)
        return self._keep_accepted(ingest, [answer is True for answer in answers])

    async def _fetch_capacity(self, ingest: Ingest) -> Drop | None:
        answers = [await self.capacity.has_enough_capacity(site) for site in ingest.sites]
        return self._keep_accepted(ingest, answers)

    def _keep_accepted(self, ingest: Ingest, answers: list[bool]) -> Drop | None:
        if all(answers):
            return None
        for site, accepted in zip(ingest.sites, answers, strict=True):
            if not accepted:
                self.capacity.note_refused(site)
        ingest.sites = [site for site, ok in zip(ingest.sites, answers, strict=True) if ok]
        return None if ingest.sites else Drop.OVER_LIMIT

    async def hash_visitor(self, ingest: Ingest) -> Drop | None:
        today, yesterday = await self.salts.keys_for(ingest.received)
        ip = ingest.ip or ""
        for site in ingest.sites:
            identity = visitor_identity(site.id, ip, ingest.user_agent)  # once for both days
            ingest.visitor_ids[site.id] = (
                identity_hash(today, identity),
                identity_hash(yesterday, identity),
            )
        return None

    def locate(self, ingest: Ingest) -> Drop | None:
        if ingest.ip:
            ingest.location = self.locator.locate(ingest.ip)
        return None

    def discard_ip(self, ingest: Ingest) -> Drop | None:
        ingest.ip = None
        return None

    async def append_to_buffer(self, ingest: Ingest) -> Drop | None:
        event = ingest.event
        received_ms = int(ingest.received.timestamp() * 1000)
        event_id = event.event_id or make_id(received_ms)
        query = event.url.partition("?")[2].partition("#")[0]
        await self.buffer.append(
            [
                BufferedEvent(
                    site_id=site.id,
                    event_id=event_id,
                    name=event.name,
                    hostname=event.hostname,
                    pathname=event.pathname,
                    query=query,
                    referrer=event.referrer,
                    user_agent=ingest.user_agent,
                    visitor_id=ingest.visitor_ids[site.id][0],
                    previous_visitor_id=ingest.visitor_ids[site.id][1],
                    country_code=ingest.location.country_code,
                    region=ingest.location.region,
                    city=ingest.location.city,
                    screen_width=event.screen_width,
                    interactive=event.interactive,
                    props=event.props,
                    revenue_amount=event.revenue_amount,
                    revenue_currency=event.revenue_currency,
                    perf=event.perf,
                    utc_offset=utc_offset_minutes(site.timezone, received_ms),
                    scroll_depth=event.scroll_depth,
                    engaged_ms=event.engaged_ms,
                )
                for site in ingest.sites
            ]
        )
        EVENTS_BUFFERED.inc(len(ingest.sites))
        return None
