"""Realistic synthetic traffic for a site, written straight into ClickHouse.

The generator works on whole time windows with numpy and only turns values into plain Python
objects (ints, strings, dicts, `Decimal`) when a batch is inserted, so the rows go through any
`Gateway`, including `RemoteClickHouse` (msgpack over HTTP).

The model, briefly:

* traffic follows a daily curve (a growing site, quieter weekends, day-to-day noise) and an
  hourly one (quiet at night in Europe and America);
* a visit is 1–40 page views (geometric, so ~45% bounce), 10 s to 5 min apart, sometimes followed
  by custom events (`Signup` with a plan and, for paid plans, revenue; `Download`;
  `Outbound Link: Click`) a few seconds later;
* a visit comes from a person; ~30% of visits are from people who came before. A person keeps
  one browser/OS/device, country and IP address; their visitor id is the ingest's daily-salted
  hash of address and User-Agent (`app.analytics.ingest.visitor`), so it changes every UTC day,
  and a visit ends on the day it started. Two visits of one person are always more than 30
  minutes apart (otherwise sessionization would have made them one);
* sessions and what each event adds to their totals are the worker's
  (`app.analytics.buffer.visits`), `referrer_source`/`utm_*` are per-session values on every
  event, `referrer` only on the entry;
* ~60% of page views report navigation timings and Core Web Vitals, drawn from lognormal
  distributions (p75 around LCP 2.2 s, INP 150 ms, TTFB 500 ms; slower on phones);
* a person keeps one window width too (a phone's, a tablet's, or a laptop's or desktop's, by
  their User-Agent's device), stored as its screen size; ~90% of page views send an engagement
  beacon when left: engaged time at most the time until the visit's next page view (a reading
  time of its own on the last page), scroll depth a skewed draw (62 % on average, the bottom
  of the page one time in sixteen).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from app.analytics.buffer import engaged
from app.analytics.buffer.enrich import ENGAGEMENT_COLUMNS, EVENT_COLUMNS, PERFORMANCE_COLUMNS
from app.analytics.buffer.referrers import source_from_referrer, source_from_utm
from app.analytics.buffer.useragent import parse_user_agent, screen_size
from app.analytics.buffer.visits import SESSION_TIMEOUT_MS, assign_in_time_order
from app.analytics.clickhouse.gateway import Gateway
from app.analytics.ingest.ids import RANDOM_BITS
from app.analytics.ingest.limits import MAX_ENGAGED_MS, PAGEVIEW
from app.analytics.ingest.visitor import SALT_BYTES, day_key, identity_hash, visitor_identity
from app.analytics.queries.periods import utc_offset_minutes

BATCH_ROWS = 50_000
DEFAULT_HOSTNAME = "example.com"

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_WINDOW_EVENTS = 100_000  # events generated per numpy pass (bounds memory)
_WINDOW_HOURS = 4  # people who visit in one window can come back in a later one
_MAX_PAGEVIEWS = 40
_BOUNCE_SHARE = 0.48  # P(one page view); a few of those visits also send a custom event
_RETURNING_SHARE = 0.3
_PAGE_GAP_MS = (10_000, 300_000)
_CUSTOM_GAP_MS = (2_000, 60_000)
_PERFORMANCE_SHARE = 0.6
_ENGAGEMENT_SHARE = 0.9
_READING_MS = 25_000  # the median engaged time on a visit's last page
# Window widths (px) by the device of a person's User-Agent, so that the ingest, which trusts
# the width, files their events under the same device.
WIDTHS = {
    "Mobile": (360, 375, 390, 393, 412, 414, 430),
    "Tablet": (768, 810, 820, 834),
    "Desktop": (1280, 1366, 1440, 1536, 1680, 1920, 2560),
}

# --- the site -------------------------------------------------------------------------------

_BLOG_POSTS = (
    "why-we-dropped-cookies",
    "clickhouse-for-small-teams",
    "self-hosting-in-2025",
    "core-web-vitals-explained",
    "migrating-from-google-analytics",
    "the-cost-of-tracking",
    "one-binary-deploys",
    "redis-streams-as-a-buffer",
    "gdpr-without-banners",
    "how-we-count-visitors",
    "faster-dashboards",
    "launch-week-recap",
)
_DOCS_PAGES = (
    "getting-started",
    "installation",
    "script-tag",
    "custom-events",
    "revenue",
    "api",
    "self-hosting",
    "configuration",
    "proxying",
    "spa-support",
    "faq",
    "outbound-links",
)
_TOP_PAGES = (
    "/",
    "/pricing",
    "/docs",
    "/blog",
    "/features",
    "/signup",
    "/login",
    "/about",
    "/changelog",
    "/compare/google-analytics",
    "/integrations/wordpress",
    "/contact",
    "/privacy",
    "/terms",
)
PATHS: tuple[str, ...] = (
    *_TOP_PAGES,
    *(f"/docs/{page}" for page in _DOCS_PAGES),
    *(f"/blog/{post}" for post in _BLOG_POSTS),
)


def _zipf(count: int, exponent: float) -> FloatArray:
    return _normalized(1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent)


def _page_weights() -> tuple[FloatArray, FloatArray]:
    """(entry page, next page) probabilities over `PATHS`: Zipf-like, blog posts land more."""
    ranks = np.argsort(np.argsort(np.arange(len(PATHS)), kind="stable"))
    navigation = _zipf(len(PATHS), 1.05)[ranks]
    entry = navigation.copy()
    blog = np.array([path.startswith("/blog/") for path in PATHS])
    entry[blog] *= 4.0
    entry[PATHS.index("/signup")] *= 0.2
    entry[PATHS.index("/login")] *= 0.5
    return entry / entry.sum(), navigation


# --- where visits come from -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    referrers: tuple[str, ...]  # entry referrer URLs (one per visit, uniformly)
    new_weight: float  # share among first visits
    returning_weight: float  # share among returning visits
    utm: tuple[str, str, str, str, str] = ("", "", "", "", "")  # medium, source, campaign, ...


_NEWSLETTER = ("email", "newsletter")
SOURCES: tuple[Source, ...] = (
    Source(("",), 0.30, 0.55),
    Source(
        (
            "https://www.google.com/",
            "https://www.google.de/",
            "https://www.google.co.uk/",
            "https://www.google.fr/",
            "https://www.google.com.br/",
        ),
        0.32,
        0.20,
    ),
    Source(("https://duckduckgo.com/",), 0.04, 0.04),
    Source(("https://www.bing.com/",), 0.03, 0.02),
    Source(("https://t.co/",), 0.05, 0.02),
    Source(
        ("https://news.ycombinator.com/", "https://news.ycombinator.com/item?id=41234567"),
        0.07,
        0.03,
    ),
    Source(
        (
            "https://www.reddit.com/r/selfhosted/",
            "https://www.reddit.com/r/webdev/",
            "https://old.reddit.com/r/programming/",
        ),
        0.05,
        0.02,
    ),
    Source(("https://github.com/",), 0.06, 0.04),
    Source(("https://www.linkedin.com/",), 0.02, 0.01),
    Source(("https://www.indiehackers.com/",), 0.01, 0.01),
    Source(("",), 0.03, 0.05, (*_NEWSLETTER, "2025-launch-week", "", "")),
    Source(("",), 0.02, 0.01, (*_NEWSLETTER, "monthly-digest", "header-link", "")),
)

# --- who visits ------------------------------------------------------------------------------

AGENTS: tuple[tuple[str, float], ...] = (
    # (User-Agent, share of people); parsed with the pipeline's own parser, so names match.
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        0.22,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36",
        0.06,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        0.12,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
        0.07,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        0.13,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        0.03,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1",
        0.02,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        0.11,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        0.03,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", 0.05),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", 0.03),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        0.06,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        0.03,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        0.04,
    ),
)
# Browsers that report neither LCP nor INP nor CLS (WebKit engines).
_NO_VITALS = ("Safari", "Mobile Safari", "Chrome Mobile iOS")

COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 30),
    ("DE", 9),
    ("GB", 7),
    ("IN", 6),
    ("FR", 5),
    ("CA", 4),
    ("NL", 3.5),
    ("BR", 3),
    ("PL", 2.5),
    ("ES", 2.5),
    ("SE", 2),
    ("AU", 2),
    ("IT", 2),
    ("JP", 2),
    ("CH", 1.5),
    ("AT", 1.2),
    ("FI", 1),
    ("DK", 1),
    ("NO", 1),
    ("BE", 1),
    ("CZ", 1),
    ("UA", 1),
    ("SG", 1),
    ("KR", 1),
    ("MX", 1),
    ("IE", 0.8),
    ("PT", 0.8),
    ("NZ", 0.5),
    ("ZA", 0.5),
    ("AR", 0.5),
    ("TR", 0.5),
    ("IL", 0.5),
    ("", 1.0),
)

# --- custom events ---------------------------------------------------------------------------

_USD, _EUR = "USD", "EUR"


@dataclass(frozen=True)
class Custom:
    name: str
    props: dict[str, str]
    weight: float
    revenue: Decimal = Decimal(0)
    currency: str = ""
    page: str = ""  # the page it fires on ("" = wherever the visitor is)


CUSTOM_EVENTS: tuple[Custom, ...] = (
    Custom("Outbound Link: Click", {"url": "https://github.com/ursa-analytics/ursa"}, 0.20),
    Custom("Outbound Link: Click", {"url": "https://clickhouse.com/docs"}, 0.08),
    Custom("Outbound Link: Click", {"url": "https://twitter.com/ursa_analytics"}, 0.07),
    Custom("Outbound Link: Click", {"url": "https://web.dev/articles/vitals"}, 0.05),
    Custom("Download", {"file": "ursa-1.4.0.tar.gz"}, 0.12),
    Custom("Download", {"file": "ursa-1.4.0-linux-amd64.zip"}, 0.08),
    Custom("Download", {"file": "privacy-whitepaper.pdf"}, 0.06),
    Custom("Download", {"file": "brand-assets.zip"}, 0.03),
    Custom("Signup", {"plan": "free"}, 0.19, page="/signup"),
    Custom("Signup", {"plan": "pro"}, 0.06, Decimal("19.00"), _USD, "/signup"),
    Custom("Signup", {"plan": "pro"}, 0.03, Decimal("17.00"), _EUR, "/signup"),
    Custom("Signup", {"plan": "team"}, 0.02, Decimal("49.00"), _USD, "/signup"),
    Custom("Signup", {"plan": "team"}, 0.01, Decimal("45.00"), _EUR, "/signup"),
)

# --- traffic curve ---------------------------------------------------------------------------

# Relative traffic per UTC hour: Europe's day, then America's.
HOURLY = np.array(
    [
        0.45,
        0.35,
        0.28,
        0.24,
        0.24,
        0.30,
        0.45,
        0.65,
        0.85,
        0.95,
        1.00,
        1.00,
        1.00,
        1.05,
        1.15,
        1.20,
        1.15,
        1.05,
        0.95,
        0.90,
        0.85,
        0.80,
        0.70,
        0.55,
    ],
    dtype=np.float64,
)
WEEKEND = 0.62
GROWTH = 0.3  # the last day has this much more traffic than the first


@dataclass(frozen=True)
class _Tables:
    """Lookup tables (categorical code → plain value) and sampling weights."""

    paths: npt.NDArray[np.object_]
    entry_p: FloatArray
    next_p: FloatArray
    signup_path: int
    source_new_p: FloatArray
    source_returning_p: FloatArray
    source_first_referrer: IntArray  # first index in `referrers` per source
    source_referrer_count: IntArray
    referrers: npt.NDArray[np.object_]
    referrer_sources: npt.NDArray[np.object_]  # per referrer variant
    utm: dict[str, npt.NDArray[np.object_]]  # column → value per referrer variant
    agent_cdf: FloatArray
    user_agents: npt.NDArray[np.object_]
    agents: dict[str, npt.NDArray[np.object_]]  # column → value per agent
    agent_vitals: BoolArray
    agent_mobile: BoolArray
    agent_widths: IntArray  # [agent, i]: a window width of that agent's device
    country_cdf: FloatArray
    countries: npt.NDArray[np.object_]
    custom_p: FloatArray
    custom_names: npt.NDArray[np.object_]
    custom_props: npt.NDArray[np.object_]
    custom_revenue: npt.NDArray[np.object_]
    custom_currency: npt.NDArray[np.object_]
    custom_page: IntArray  # index in `paths`, -1 = current page


def _objects(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _normalized(weights: npt.ArrayLike) -> FloatArray:
    array = np.asarray(weights, dtype=np.float64)
    return np.asarray(array / array.sum(), dtype=np.float64)


@cache
def _tables(hostname: str) -> _Tables:
    entry_p, next_p = _page_weights()
    referrers: list[str] = []
    sources: list[str] = []
    utm: list[tuple[str, str, str, str, str]] = []
    first: list[int] = []
    for source in SOURCES:
        first.append(len(referrers))
        for referrer in source.referrers:
            name = source_from_utm(source.utm[1]) if source.utm[1] else ""
            referrers.append(referrer)
            sources.append(name or source_from_referrer(referrer, hostname))
            utm.append(source.utm)
    software = [parse_user_agent(agent) for agent, _ in AGENTS]
    utm_columns = ("utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term")
    return _Tables(
        paths=_objects(PATHS),
        entry_p=entry_p,
        next_p=next_p,
        signup_path=PATHS.index("/signup"),
        source_new_p=_normalized([s.new_weight for s in SOURCES]),
        source_returning_p=_normalized([s.returning_weight for s in SOURCES]),
        source_first_referrer=np.array(first, dtype=np.int64),
        source_referrer_count=np.array([len(s.referrers) for s in SOURCES], dtype=np.int64),
        referrers=_objects(referrers),
        referrer_sources=_objects(sources),
        utm={name: _objects([u[i] for u in utm]) for i, name in enumerate(utm_columns)},
        agent_cdf=np.cumsum(_normalized([weight for _, weight in AGENTS])),
        user_agents=_objects([agent for agent, _ in AGENTS]),
        agents={
            name: _objects([getattr(item, name) for item in software])
            for name in ("browser", "browser_version", "os", "os_version", "device")
        },
        agent_vitals=np.array([item.browser not in _NO_VITALS for item in software]),
        agent_mobile=np.array([item.device != "Desktop" for item in software]),
        agent_widths=np.array(
            [np.resize(WIDTHS[item.device], len(WIDTHS["Desktop"])) for item in software]
        ),
        country_cdf=np.cumsum(_normalized([weight for _, weight in COUNTRIES])),
        countries=_objects([code for code, _ in COUNTRIES]),
        custom_p=_normalized([c.weight for c in CUSTOM_EVENTS]),
        custom_names=_objects([c.name for c in CUSTOM_EVENTS]),
        custom_props=_objects([c.props for c in CUSTOM_EVENTS]),
        custom_revenue=_objects([c.revenue for c in CUSTOM_EVENTS]),
        custom_currency=_objects([c.currency for c in CUSTOM_EVENTS]),
        custom_page=np.array(
            [PATHS.index(c.page) if c.page else -1 for c in CUSTOM_EVENTS], dtype=np.int64
        ),
    )


# --- hashing (stable per person, independent of generation order) -------------------------------

_U64 = np.uint64


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finalizer: a cheap, well-spread 64-bit hash, vectorized."""
    x = values + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _unit(hashes: npt.NDArray[np.uint64]) -> FloatArray:
    """Hashes → floats in [0, 1)."""
    return (hashes >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


# --- generation --------------------------------------------------------------------------------


@dataclass
class _People:
    """Everyone who visited so far: who each one is, and when their last visit ended (ms).

    A person's visitor id is the ingest's: the hash of the site, their IP address and their
    User-Agent under the key of the day, which comes from a daily salt as in `Salts`.
    """

    site_id: int  # the site visitor ids are hashed for
    key: np.uint64
    tables: _Tables
    last_end: IntArray = field(default_factory=lambda: np.empty(0, np.int64))
    identities: npt.NDArray[np.object_] = field(default_factory=lambda: _objects([]))
    count: int = 0
    day_keys: dict[int, bytes] = field(default_factory=dict)

    def allocate(self, n: int) -> IntArray:
        """Ids for `n` people who never visited before."""
        needed = self.count + n
        if needed > len(self.last_end):
            size = max(needed, 2 * len(self.last_end))
            grown = np.full(size, np.iinfo(np.int64).min // 2)
            grown[: len(self.last_end)] = self.last_end
            self.last_end = grown
            self.identities = np.concatenate(
                [self.identities, _objects([b""] * (size - len(self.identities)))]
            )
        ids = np.arange(self.count, needed, dtype=np.int64)
        user_agents = self.tables.user_agents[self.agents(ids)]
        self.identities[ids] = _identities(self.site_id, addresses(ids), user_agents)
        self.count = needed
        return ids

    def hashed(self, people: IntArray, salt: int) -> npt.NDArray[np.uint64]:
        return _mix(people.astype(np.uint64) ^ self.key ^ _U64((salt << 40) | salt))

    def agents(self, people: IntArray) -> IntArray:
        """Each person's browser (an index in `AGENTS`): always the same one."""
        return _choose(self.tables.agent_cdf, _unit(self.hashed(people, 2)))

    def key_of_day(self, day: int) -> bytes:
        """The visitor hash key of a UTC day (in days since 1970)."""
        key = self.day_keys.get(day)
        if key is None:
            hash_key = int(self.key).to_bytes(8, "big")
            salt = hashlib.blake2b(day.to_bytes(4, "big"), key=hash_key, digest_size=SALT_BYTES)
            key = self.day_keys[day] = day_key(salt.digest(), hash_key)
        return key

    def visitor_ids(self, people: IntArray, days: IntArray) -> IntArray:
        """The visitor id of each (person, UTC day)."""
        _, first, inverse = np.unique(
            people * (1 << 20) + days, return_index=True, return_inverse=True
        )
        keys = {day: self.key_of_day(day) for day in np.unique(days).tolist()}
        ids = [
            identity_hash(keys[day], identity)
            for day, identity in zip(
                days[first].tolist(), self.identities[people[first]].tolist(), strict=True
            )
        ]
        per_visit: IntArray = np.asarray(ids, dtype=np.int64)[inverse.reshape(-1)]
        return per_visit


_identities = np.frompyfunc(visitor_identity, 3, 1)  # element-wise, over numpy arrays


@cache
def _groups() -> npt.NDArray[np.object_]:
    """The 65,536 groups of an IPv6 address, written out."""
    return _objects([f"{group:x}" for group in range(1 << 16)])


def addresses(people: IntArray) -> npt.NDArray[np.object_]:
    """Each person's IP address: one of their own in the range kept for documentation."""
    groups, mask, colon = _groups(), 0xFFFF, _objects([":"])
    high, middle, low = (groups[people >> shift & mask] for shift in (32, 16, 0))
    ip: npt.NDArray[np.object_] = _objects(["2001:db8::"]) + high + colon + middle + colon + low
    return ip


@dataclass
class _Frame:
    """Events (and performance rows) of one window, as arrays of codes and numbers."""

    columns: dict[str, np.ndarray[Any, Any]]

    def __len__(self) -> int:
        return len(self.columns["event_id"])


def _hour_weights(first_hour_ms: int, now_ms: int, rng: np.random.Generator) -> FloatArray:
    hours = max(1, (now_ms - first_hour_ms + _HOUR_MS - 1) // _HOUR_MS)
    starts = first_hour_ms + np.arange(hours, dtype=np.int64) * _HOUR_MS
    day_index = (starts - first_hour_ms) // _DAY_MS
    days = int(day_index[-1]) + 1
    weekday = (starts // _DAY_MS + 3) % 7  # 1970-01-01 was a Thursday (3)
    daily = rng.lognormal(0.0, 0.12, days) * (1.0 + GROWTH * np.arange(days) / max(days - 1, 1))
    weights = daily[day_index] * HOURLY[(starts // _HOUR_MS) % 24]
    weights = np.where(weekday >= 5, weights * WEEKEND, weights)
    weights[-1] *= max((now_ms - int(starts[-1])) / _HOUR_MS, 0.01)  # the hour has only begun
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _windows(per_hour: IntArray) -> list[tuple[int, int]]:
    """Consecutive hour ranges of at most `_WINDOW_HOURS` hours and about `_WINDOW_EVENTS`."""
    windows: list[tuple[int, int]] = []
    begin, total = 0, 0
    for hour, count in enumerate(per_hour.tolist()):
        total += count
        if total >= _WINDOW_EVENTS or hour + 1 - begin >= _WINDOW_HOURS:
            windows.append((begin, hour + 1))
            begin, total = hour + 1, 0
    if begin < len(per_hour):
        windows.append((begin, len(per_hour)))
    return windows


def _choose(cdf: FloatArray, uniform: FloatArray) -> IntArray:
    return np.minimum(np.searchsorted(cdf, uniform, side="right"), len(cdf) - 1).astype(np.int64)


def _window(
    rng: np.random.Generator,
    people: _People,
    tables: _Tables,
    target: int,
    hour_starts: IntArray,
    hour_p: FloatArray,
    now_ms: int,
) -> _Frame:
    """`target` events of visits starting in the given hours."""
    # Visits: page views and custom events per visit, until the window has `target` events.
    mean_events = 1.0 / _BOUNCE_SHARE + 0.1
    count = int(target / mean_events * 1.1) + 16
    pageviews = np.minimum(rng.geometric(_BOUNCE_SHARE, count), _MAX_PAGEVIEWS).astype(np.int64)
    custom_chance = np.where(pageviews == 1, 0.05, 0.13)
    customs = (rng.random(count) < custom_chance) * (1 + (rng.random(count) < 0.15))
    sizes = pageviews + customs
    while int(sizes.sum()) < target:  # unlucky draw: more visits
        sizes = np.concatenate([sizes, sizes])
        pageviews = np.concatenate([pageviews, pageviews])
        customs = np.concatenate([customs, customs])
    ends = np.cumsum(sizes)
    visits = int(np.searchsorted(ends, target)) + 1  # the last visit may be cut short
    sizes, pageviews, customs = sizes[:visits].copy(), pageviews[:visits], customs[:visits]
    sizes[-1] -= int(ends[visits - 1]) - target

    # Event layout: page views first, then the visit's custom events (on its last page).
    total = int(sizes.sum())
    visit_of = np.repeat(np.arange(visits, dtype=np.int64), sizes)
    offsets = np.cumsum(sizes) - sizes
    position = np.arange(total, dtype=np.int64) - offsets[visit_of]
    is_custom = position >= pageviews[visit_of]
    gaps = np.where(
        is_custom,
        rng.integers(*_CUSTOM_GAP_MS, total),
        np.clip(rng.lognormal(np.log(55_000), 0.8, total), *_PAGE_GAP_MS).astype(np.int64),
    )
    gaps[offsets] = 0
    since_start = np.cumsum(gaps) - np.cumsum(gaps)[offsets][visit_of]
    span = since_start[offsets + sizes - 1]

    # When: an hour by the traffic curve, a moment in it; nothing after `now`.
    hour = rng.choice(len(hour_starts), visits, p=hour_p)
    starts = hour_starts[hour] + rng.integers(0, _HOUR_MS, visits)
    starts = np.minimum(starts, now_ms - 1 - span)
    # and each visit ends on the UTC day it started: the ingest hashes events after midnight
    # under the next day's key, which would give a visit two visitor ids.
    starts = np.minimum(starts, (starts // _DAY_MS + 1) * _DAY_MS - 1 - span)

    # Who: returning people (recent ones much more likely) or newcomers; a returning person's
    # visits must be more than the session timeout apart, else the visit goes to a newcomer.
    returning = (rng.random(visits) < _RETURNING_SHARE) & (people.count > 0)
    person = np.empty(visits, dtype=np.int64)
    picked = (1.0 - rng.random(int(returning.sum())) ** 4) * people.count
    person[returning] = np.minimum(picked.astype(np.int64), people.count - 1)
    person[~returning] = people.allocate(int((~returning).sum()))
    visit_end = starts + span
    order = np.lexsort((starts, person))
    sorted_person = person[order]
    previous_end = people.last_end[sorted_person]
    same = np.zeros(visits, dtype=bool)
    same[1:] = sorted_person[1:] == sorted_person[:-1]
    if same.any():  # running max of earlier visits' ends within each person's group
        group = np.cumsum(~same) - 1
        span_all = int(visit_end.max() - visit_end.min()) + 1
        keyed = group * span_all + (visit_end[order] - visit_end.min())
        running = np.maximum.accumulate(keyed)
        earlier = np.empty(visits, dtype=np.int64)
        earlier[0] = np.iinfo(np.int64).min // 2
        earlier[1:] = running[:-1] - group[1:] * span_all + visit_end.min()
        previous_end = np.where(same, np.maximum(previous_end, earlier), previous_end)
    clash = starts[order] - previous_end <= SESSION_TIMEOUT_MS
    if clash.any():
        person[order[clash]] = people.allocate(int(clash.sum()))
        returning[order[clash]] = False
    np.maximum.at(people.last_end, person, visit_end)

    # Person attributes (stable per person): agent, window width and country.
    agent = people.agents(person)
    width_choice = people.hashed(person, 4) % _U64(tables.agent_widths.shape[1])
    width = tables.agent_widths[agent, width_choice.astype(np.int64)]
    country = _choose(tables.country_cdf, _unit(people.hashed(person, 3)))
    visitor = people.visitor_ids(person, starts // _DAY_MS)

    # Visit attributes: source (returning people come direct more often) and referrer variant.
    source = np.where(
        returning,
        rng.choice(len(SOURCES), visits, p=tables.source_returning_p),
        rng.choice(len(SOURCES), visits, p=tables.source_new_p),
    )
    variant = tables.source_first_referrer[source] + (
        rng.integers(0, 1 << 30, visits) % tables.source_referrer_count[source]
    )

    # Pages: entry page, then navigation; custom events stay on the last page (or /signup).
    path = rng.choice(len(PATHS), total, p=tables.next_p)
    path[offsets] = rng.choice(len(PATHS), visits, p=tables.entry_p)
    custom_kind = np.where(is_custom, rng.choice(len(CUSTOM_EVENTS), total, p=tables.custom_p), -1)
    custom_page = np.where(is_custom, tables.custom_page[np.maximum(custom_kind, 0)], -1)
    last_page = offsets + np.minimum(pageviews, sizes) - 1
    forced = np.full(visits, -1, dtype=np.int64)
    np.maximum.at(forced, visit_of[is_custom], custom_page[is_custom])
    has_forced = (forced >= 0) & (pageviews > 1)
    path[last_page[has_forced]] = forced[has_forced]
    path = np.where(is_custom, path[last_page[visit_of]], path)

    # Ids: like `make_id(ms, low)`; sessions as the worker makes them (every event interactive).
    timestamp_ms = starts[visit_of] + since_start
    event_id = (timestamp_ms << RANDOM_BITS) | rng.integers(0, 1 << RANDOM_BITS, total)
    visitor_id = visitor[visit_of]
    sessions = assign_in_time_order(visitor_id, timestamp_ms, event_id, np.ones(total, bool))
    return _Frame(
        {
            "timestamp_ms": timestamp_ms,
            "event_id": event_id,
            "session_id": sessions.session_id,
            "session_start": sessions.start,
            "session_bounce": sessions.bounce,
            "session_seconds": sessions.seconds,
            "visitor_id": visitor_id,
            "person": person[visit_of],
            "custom": custom_kind,
            "path": path,
            "entry": position == 0,
            "variant": variant[visit_of],
            "agent": agent[visit_of],
            "screen_width": width[visit_of],
            "country": country[visit_of],
        }
    )


def _concat(frames: list[_Frame]) -> _Frame:
    if len(frames) == 1:
        return frames[0]
    names = frames[0].columns
    return _Frame({name: np.concatenate([f.columns[name] for f in frames]) for name in names})


def _slice(frame: _Frame, start: int, stop: int) -> _Frame:
    return _Frame({name: values[start:stop] for name, values in frame.columns.items()})


def ordered(columns: Mapping[str, Sequence[Any]], names: Sequence[str]) -> list[Sequence[Any]]:
    """Column-oriented data in the order of `names` (e.g. `EVENT_COLUMNS`); every name once."""
    if set(columns) != set(names):
        raise ValueError(f"columns differ: {sorted(set(columns) ^ set(names))}")
    return [columns[name] for name in names]


def _event_columns(
    frame: _Frame, tables: _Tables, site_id: int, hostname: str
) -> dict[str, list[Any]]:
    c = frame.columns
    n = len(frame)
    custom = c["custom"]
    is_custom = custom >= 0
    kind = np.maximum(custom, 0)
    variant, agent = c["variant"], c["agent"]
    entry = c["entry"]
    empty = _objects([""])[np.zeros(n, dtype=np.int64)]
    no_props = _objects([{}])[np.zeros(n, dtype=np.int64)]
    zero = _objects([Decimal(0)])[np.zeros(n, dtype=np.int64)]
    return {
        "site_id": [site_id] * n,
        "timestamp": (c["timestamp_ms"] // 1000).tolist(),
        "event_id": c["event_id"].tolist(),
        "name": np.where(is_custom, tables.custom_names[kind], PAGEVIEW).tolist(),
        "visitor_id": c["visitor_id"].tolist(),
        "session_id": c["session_id"].tolist(),
        "session_start": c["session_start"].tolist(),
        "session_bounce": c["session_bounce"].tolist(),
        "session_seconds": c["session_seconds"].tolist(),
        "interactive": [True] * n,
        "hostname": [hostname] * n,
        "pathname": tables.paths[c["path"]].tolist(),
        "referrer": np.where(entry, tables.referrers[variant], empty).tolist(),
        "referrer_source": tables.referrer_sources[variant].tolist(),
        **{name: values[variant].tolist() for name, values in tables.utm.items()},
        "country_code": tables.countries[c["country"]].tolist(),
        "region": [""] * n,
        "city": [""] * n,
        **{name: values[agent].tolist() for name, values in tables.agents.items()},
        "screen_size": _screen_sizes(c["screen_width"]).tolist(),
        "props": np.where(is_custom, tables.custom_props[kind], no_props).tolist(),
        "revenue": np.where(is_custom, tables.custom_revenue[kind], zero).tolist(),
        "revenue_currency": np.where(is_custom, tables.custom_currency[kind], empty).tolist(),
        "utc_offset": c["utc_offset"].tolist(),
    }


_screen_sizes = np.frompyfunc(screen_size, 1, 1)


# Copied from the page view a beacon reports on (`_engagement_columns`).
_ENGAGEMENT_COPIED = tuple(
    name
    for name in ENGAGEMENT_COLUMNS
    if name
    not in ("timestamp", "event_id", "scroll_depth", "engaged_ms", "first_beacon", "depth_gain")
)


@dataclass
class _DailyDepths:
    """The worker's deepest scroll per visitor and page (`buffer.engaged`) for the UTC days
    whose visitor ids can still get beacons (a visitor id is of one day: older ones are
    dropped)."""

    days: dict[int, engaged.Depths] = field(default_factory=dict)

    def stamp(
        self, pairs: list[engaged.Pair], depths: list[int], days: list[int]
    ) -> tuple[list[int], list[int]]:
        firsts, gains = [0] * len(pairs), [0] * len(pairs)
        for day in sorted(set(days)):
            at = [i for i, d in enumerate(days) if d == day]
            found = engaged.stamp(
                ((pairs[i], depths[i]) for i in at), self.days.setdefault(day, {})
            )
            for i, first, gain in zip(at, *found, strict=True):
                firsts[i], gains[i] = first, gain
        for day in [d for d in self.days if days and d < max(days) - 1]:
            del self.days[day]
        return firsts, gains


def _engagement_columns(
    frame: _Frame,
    events: dict[str, list[Any]],
    rng: np.random.Generator,
    now_ms: int,
    daily: _DailyDepths,
) -> dict[str, list[Any]]:
    """The engagement beacons of a batch's page views, with their visits' values and the
    worker's stamps."""
    c = frame.columns
    n = len(frame)
    ts, session, page = c["timestamp_ms"], c["session_id"], c["custom"] < 0
    followed = np.zeros(n, dtype=bool)  # the visit's next event (its next row) is a page view
    followed[:-1] = (session[1:] == session[:-1]) & page[1:]
    until_next = np.zeros(n, dtype=np.int64)
    until_next[:-1] = ts[1:] - ts[:-1]
    reading = np.clip(rng.lognormal(np.log(_READING_MS), 1.1, n), 300, MAX_ENGAGED_MS)
    engaged = np.where(followed, np.minimum(reading, until_next), reading).astype(np.int64)
    left = np.where(followed, until_next, engaged + rng.integers(200, 5_000, n))
    depth = np.minimum(np.round(rng.beta(1.6, 1.1, n) * 105), 100).astype(np.int64)
    picked = np.flatnonzero(page & (rng.random(n) < _ENGAGEMENT_SHARE))
    columns = {name: _objects(events[name])[picked].tolist() for name in _ENGAGEMENT_COPIED}
    sent = np.minimum(ts + left, now_ms - 1)[picked]
    pairs = list(zip(columns["site_id"], columns["visitor_id"], columns["pathname"], strict=True))
    firsts, gains = daily.stamp(pairs, depth[picked].tolist(), (ts[picked] // _DAY_MS).tolist())
    return {
        **columns,
        "first_beacon": firsts,
        "depth_gain": gains,
        "timestamp": (sent // 1000).tolist(),
        # a beacon's id is minted when it is sent, like any other
        "event_id": (
            (sent << RANDOM_BITS) | rng.integers(0, 1 << RANDOM_BITS, len(picked))
        ).tolist(),
        "scroll_depth": depth[picked].tolist(),
        "engaged_ms": engaged[picked].tolist(),
    }


def _timings(rng: np.random.Generator, mobile: BoolArray) -> dict[str, FloatArray]:
    """Navigation timings and vitals (ms) with realistic shapes; phones are slower."""
    n = len(mobile)
    slow = np.where(mobile, 1.35, 1.0)

    def draw(median: float, sigma: float) -> FloatArray:
        return rng.lognormal(np.log(median), sigma, n) * slow

    reused = rng.random(n) < 0.55  # connection reused or DNS cached: no DNS/TCP/TLS time
    dns = np.where(reused, 0.0, draw(12, 0.9))
    connect = np.where(reused, 0.0, draw(25, 0.7))
    tls = np.where(reused, 0.0, draw(30, 0.6))
    ttfb = dns + connect + tls + draw(230, 0.75)
    download = draw(25, 0.9)
    dom_content_loaded = ttfb + download + draw(380, 0.6)
    page_load = dom_content_loaded + draw(450, 0.7)
    fcp = ttfb + draw(620, 0.55)
    lcp = fcp + draw(420, 0.95)
    inp = draw(85, 0.8)
    cls = np.where(rng.random(n) < 0.45, 0.0, rng.lognormal(np.log(0.03), 1.1, n))
    return {
        "dns": dns,
        "connect": connect,
        "tls": tls,
        "ttfb": ttfb,
        "download": download,
        "dom_content_loaded": dom_content_loaded,
        "page_load": page_load,
        "fcp": fcp,
        "lcp": lcp,
        "inp": inp,
        "cls": cls,
    }


def _with_nulls(values: npt.NDArray[Any], missing: BoolArray) -> list[Any]:
    if not missing.any():
        return values.tolist()  # type: ignore[no-any-return]
    boxed = values.astype(object)
    boxed[missing] = None
    return boxed.tolist()  # type: ignore[no-any-return]


def _performance_columns(
    frame: _Frame, tables: _Tables, rng: np.random.Generator, site_id: int
) -> dict[str, list[Any]]:
    c = frame.columns
    chosen = (c["custom"] < 0) & (rng.random(len(frame)) < _PERFORMANCE_SHARE)
    agent = c["agent"][chosen]
    n = len(agent)
    timings = _timings(rng, tables.agent_mobile[agent])
    no_vitals = ~tables.agent_vitals[agent]
    no_interaction = rng.random(n) < 0.3  # left before interacting: no INP
    columns: dict[str, list[Any]] = {
        "site_id": [site_id] * n,
        "timestamp": (c["timestamp_ms"][chosen] // 1000).tolist(),
        "event_id": c["event_id"][chosen].tolist(),
        "utc_offset": c["utc_offset"][chosen].tolist(),
        "pathname": tables.paths[c["path"][chosen]].tolist(),
        "country_code": tables.countries[c["country"][chosen]].tolist(),
        "browser": tables.agents["browser"][agent].tolist(),
        "device": tables.agents["device"][agent].tolist(),
    }
    for name, values in timings.items():
        if name == "cls":
            columns[name] = _with_nulls(np.round(values, 4), no_vitals)
            continue
        rounded = np.round(values).astype(np.int64)
        missing = (
            no_vitals
            if name == "lcp"
            else no_vitals | no_interaction
            if name == "inp"
            else (np.zeros(n, dtype=bool))
        )
        columns[name] = _with_nulls(rounded, missing)
    return columns


def _token_base(
    site_id: int, seed: int | None, days: int, events: int, now_ms: int, hostname: str
) -> str:
    """Deterministic for a seed (a re-run is deduplicated), else unique."""
    if seed is None:
        return f"demo:{site_id}:{secrets.token_hex(8)}"
    digest = hashlib.blake2b(f"{days}:{events}:{now_ms}:{hostname}".encode(), digest_size=6)
    return f"demo:{site_id}:{seed}:{digest.hexdigest()}"


@dataclass(frozen=True)
class Batch:
    """Events as `generate` inserts them (`EVENT_COLUMNS`, `PERFORMANCE_COLUMNS`,
    `ENGAGEMENT_COLUMNS` by name)."""

    events: dict[str, list[Any]]
    performance: dict[str, list[Any]]
    engagement: dict[str, list[Any]]
    frame: _Frame
    people: _People

    def senders(self) -> list[tuple[str, str]]:
        """The IP address and User-Agent each event came from: what the ingest would have
        hashed into its visitor id (never stored), to send the batch through the ingest."""
        columns = self.frame.columns
        agents = self.people.tables.user_agents[columns["agent"]].tolist()
        return list(zip(addresses(columns["person"]).tolist(), agents, strict=True))


class Traffic:
    """A site's synthetic traffic over the last `days` UTC days (ending at `now`).

    Visitor ids are what the ingest computes for the site with id `hashed_as`: by default one
    shared by every site, so that a seed gives each site the same data.
    """

    def __init__(
        self,
        site_id: int,
        *,
        days: int,
        events: int,
        seed: int | None,
        now: dt.datetime | None = None,
        hostname: str | None = None,
        timezone: str = "UTC",
        hashed_as: int = 0,
    ) -> None:
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        self.site_id = site_id
        self.hostname = hostname or DEFAULT_HOSTNAME
        self.now_ms = int(now.timestamp() * 1000)
        self.first_hour_ms = (self.now_ms // _DAY_MS - (days - 1)) * _DAY_MS
        self.rng = np.random.default_rng(seed)
        self.tables = _tables(self.hostname)
        key = _U64(int(self.rng.integers(0, (1 << 63) - 1)))
        self.people = _People(hashed_as, key, self.tables)
        self.token_base = _token_base(site_id, seed, days, events, self.now_ms, self.hostname)
        self.depths = _DailyDepths()
        hour_p = _hour_weights(self.first_hour_ms, self.now_ms, self.rng)
        self.per_hour = self.rng.multinomial(events, hour_p).astype(np.int64)
        self.hour_starts = (
            self.first_hour_ms + np.arange(len(self.per_hour), dtype=np.int64) * _HOUR_MS
        )
        self.hour_offsets = np.array(
            [utc_offset_minutes(timezone, int(ms)) for ms in self.hour_starts], dtype=np.int64
        )

    def keys_for(self, now: dt.datetime) -> tuple[bytes, bytes]:
        """Today's and yesterday's visitor hash keys, as `Salts.keys_for` gives the ingest."""
        today = int(now.timestamp() * 1000) // _DAY_MS
        return self.people.key_of_day(today), self.people.key_of_day(today - 1)

    def batches(self) -> Iterator[Batch]:
        """The events, `BATCH_ROWS` at a time (the last batch fewer)."""
        pending: list[_Frame] = []
        pending_rows = 0
        for frame in self._frames():
            pending.append(frame)
            pending_rows += len(frame)
            while pending_rows >= BATCH_ROWS:
                merged = _concat(pending)
                yield self._batch(_slice(merged, 0, BATCH_ROWS))
                rest = _slice(merged, BATCH_ROWS, len(merged))
                pending, pending_rows = ([rest], len(rest)) if len(rest) else ([], 0)
        if pending_rows:
            yield self._batch(_concat(pending))

    def _frames(self) -> Iterator[_Frame]:
        for begin, end in _windows(self.per_hour):
            target = int(self.per_hour[begin:end].sum())
            if target == 0:
                continue
            weights = self.per_hour[begin:end] / target
            hour_starts = self.hour_starts[begin:end]
            frame = _window(
                self.rng, self.people, self.tables, target, hour_starts, weights, self.now_ms
            )
            hour_index = (frame.columns["timestamp_ms"] - self.first_hour_ms) // _HOUR_MS
            last_hour = len(self.hour_offsets) - 1
            frame.columns["utc_offset"] = self.hour_offsets[np.clip(hour_index, 0, last_hour)]
            yield frame

    def _batch(self, frame: _Frame) -> Batch:
        events = _event_columns(frame, self.tables, self.site_id, self.hostname)
        return Batch(
            events,
            _performance_columns(frame, self.tables, self.rng, self.site_id),
            _engagement_columns(frame, events, self.rng, self.now_ms, self.depths),
            frame,
            self.people,
        )


def generate(
    gateway: Gateway,
    site_id: int,
    *,
    days: int,
    events: int,
    seed: int | None,
    on_progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
    hostname: str | None = None,
    timezone: str = "UTC",
) -> int:
    """Write about `events` events over the last `days` UTC days (ending at `now`) for a site.

    Inserts in batches of `BATCH_ROWS` events (plus their performance and engagement rows),
    calling `on_progress(n)` after each; returns how many events were written.
    """
    if days < 1 or events < 1:
        return 0
    traffic = Traffic(
        site_id, days=days, events=events, seed=seed, now=now, hostname=hostname, timezone=timezone
    )
    written = 0
    for number, batch in enumerate(traffic.batches()):
        token = f"{traffic.token_base}:{number}"
        gateway.insert("events", EVENT_COLUMNS, ordered(batch.events, EVENT_COLUMNS), token=token)
        if batch.performance["event_id"]:
            data = ordered(batch.performance, PERFORMANCE_COLUMNS)
            gateway.insert("performance", PERFORMANCE_COLUMNS, data, token=f"{token}:performance")
        if batch.engagement["event_id"]:
            data = ordered(batch.engagement, ENGAGEMENT_COLUMNS)
            gateway.insert("engagement", ENGAGEMENT_COLUMNS, data, token=f"{token}:engagement")
        written += len(batch.frame)
        if on_progress is not None:
            on_progress(len(batch.frame))
    return written
