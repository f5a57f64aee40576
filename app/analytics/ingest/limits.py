"""Limits on what `/api/event` accepts. Plausible's Events API limits are the reference."""

MAX_BODY_BYTES = 1_000_000
MAX_NAME_CHARS = 120
MAX_URL_CHARS = 2_000
MAX_REFERRER_CHARS = 2_000
MAX_DOMAIN_CHARS = 253
MAX_DOMAINS_PER_EVENT = 10
MAX_PROPS = 30
MAX_PROP_KEY_BYTES = 300
MAX_PROP_VALUE_BYTES = 2_000
MAX_USER_AGENT_CHARS = 1_024
MAX_SCREEN_WIDTH = 100_000
MAX_TIMING_MS = 600_000
MAX_CLS = 100.0
MAX_ENGAGED_MS = 30 * 60 * 1000  # an engagement beacon's time is clamped to this
MAX_REVENUE_AMOUNT = 1_000_000_000_000
ALLOWED_URL_SCHEMES = frozenset({"http", "https"})
PERFORMANCE_EVENT = "ursa:performance"
PAGEVIEW = "pageview"
ENGAGEMENT_EVENT = "engagement"
