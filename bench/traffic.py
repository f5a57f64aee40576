"""Realistic request bodies and buffered events for the benchmarks.

Built from the demo data's own tables (pages, referrers, User-Agents, custom events), so what the
benchmarks push through `/api/event` or the Redis stream looks like a real site's traffic: page
views, the tracker's separate `ursa:performance` beacons, and a few custom events.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from app.analytics.buffer.stream import BufferedEvent
from app.analytics.ingest.ids import make_id
from app.analytics.ingest.limits import PAGEVIEW, PERFORMANCE_EVENT
from app.cli.demo import AGENTS, CUSTOM_EVENTS, PATHS, SOURCES

DOMAIN = "bench.example"
PERFORMANCE_SHARE = 0.35  # of all requests: ~60% of page views send a performance beacon
CUSTOM_SHARE = 0.05


@dataclass(frozen=True)
class Request:
    body: bytes
    user_agent: str
    forwarded_for: str  # a public client address (the web process trusts 127.0.0.1 as a proxy)


def _perf(rng: random.Random) -> dict[str, float]:
    ttfb = rng.lognormvariate(5.6, 0.75)
    fcp = ttfb + rng.lognormvariate(6.4, 0.55)
    return {
        "dns": round(rng.lognormvariate(2.5, 0.9)),
        "connect": round(rng.lognormvariate(3.2, 0.7)),
        "ttfb": round(ttfb),
        "fcp": round(fcp),
        "lcp": round(fcp + rng.lognormvariate(6.0, 0.95)),
        "inp": round(rng.lognormvariate(4.4, 0.8)),
        "cls": round(rng.lognormvariate(-3.5, 1.1), 4),
    }


def _page(rng: random.Random) -> str:
    # Zipf-like over the demo site's pages
    index = min(int(rng.paretovariate(1.1)) - 1, len(PATHS) - 1)
    return PATHS[index]


def _entry(rng: random.Random) -> tuple[str, str]:
    """(referrer, query string) of a visit's entry, weighted like the demo sources."""
    source = rng.choices(SOURCES, weights=[s.new_weight for s in SOURCES])[0]
    referrer = rng.choice(source.referrers)
    medium, utm_source, campaign, *_ = source.utm
    query = (
        f"?utm_source={utm_source}&utm_medium={medium}&utm_campaign={campaign}"
        if (utm_source)
        else ""
    )
    return referrer, query


def _ip(rng: random.Random) -> str:
    first = rng.choice((24, 31, 46, 62, 77, 81, 84, 91, 95, 109, 151, 176, 185, 188, 193, 212))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def requests(count: int, seed: int = 1, domain: str = DOMAIN) -> list[Request]:
    """`count` distinct `/api/event` requests (bodies + headers) in a realistic mix."""
    rng = random.Random(seed)
    agents = [agent for agent, _ in AGENTS]
    agent_weights = [weight for _, weight in AGENTS]
    out = []
    for _ in range(count):
        roll = rng.random()
        referrer, query = _entry(rng)
        url = f"https://{domain}{_page(rng)}{query if roll < 0.3 else ''}"
        body: dict[str, object] = {"n": PAGEVIEW, "u": url, "d": domain}
        if roll < PERFORMANCE_SHARE:
            body = {
                "n": PERFORMANCE_EVENT,
                "u": url,
                "d": domain,
                "i": False,
                "ursa": {"perf": _perf(rng)},
            }
        elif roll < PERFORMANCE_SHARE + CUSTOM_SHARE:
            custom = rng.choice(CUSTOM_EVENTS)
            body = {"n": custom.name, "u": url, "d": domain, "p": custom.props}
            if custom.revenue:
                body["$"] = {"amount": str(custom.revenue), "currency": custom.currency}
        elif referrer and rng.random() < 0.5:
            body["r"] = referrer
        out.append(
            Request(
                body=json.dumps(body, separators=(",", ":")).encode(),
                user_agent=rng.choices(agents, weights=agent_weights)[0],
                forwarded_for=_ip(rng),
            )
        )
    return out


def buffered_events(count: int, site_id: int, seed: int = 1) -> list[BufferedEvent]:
    """`count` events as the web process would buffer them, for a pool of visitors."""
    rng = random.Random(seed)
    agents = [agent for agent, _ in AGENTS]
    agent_weights = [weight for _, weight in AGENTS]
    visitors = max(count // 6, 1)
    countries = ("US", "DE", "GB", "IN", "FR", "CA", "NL", "BR", "PL", "")
    now_ms = time.time_ns() // 1_000_000
    out = []
    for _ in range(count):
        visitor = rng.randrange(visitors)
        visitor_rng = random.Random(visitor * 7919 + seed)
        referrer, query = _entry(rng) if rng.random() < 0.4 else ("", "")
        roll = rng.random()
        name, props, perf = PAGEVIEW, {}, {}
        revenue, currency = "", ""
        if roll < PERFORMANCE_SHARE:
            name, perf = PERFORMANCE_EVENT, _perf(rng)
        elif roll < PERFORMANCE_SHARE + CUSTOM_SHARE:
            custom = rng.choice(CUSTOM_EVENTS)
            name, props = custom.name, custom.props
            if custom.revenue:
                revenue, currency = str(custom.revenue), custom.currency
        out.append(
            BufferedEvent(
                site_id=site_id,
                event_id=make_id(now_ms, rng.getrandbits(20)),
                name=name,
                hostname=DOMAIN,
                pathname=_page(rng),
                query=query.lstrip("?"),
                referrer=referrer,
                user_agent=visitor_rng.choices(agents, weights=agent_weights)[0],
                visitor_id=(visitor * 0x9E3779B97F4A7C15) & ((1 << 63) - 1) or 1,
                previous_visitor_id=0,
                country_code=visitor_rng.choice(countries),
                interactive=name != PERFORMANCE_EVENT,
                props=props,
                revenue_amount=revenue,
                revenue_currency=currency,
                perf=perf,
            )
        )
    return out
