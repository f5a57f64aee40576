"""Rate limits: the rules, and the sliding-window limiter that counts them in the cache Redis.

Routes declare their rules with `limited` (counted by `app.accounts.request_auth.RateLimits`);
the flows count the rules keyed by a submitted email with `Limiter.enforce`. Which rule applies
where, and what happens past one or without Redis: docs/security.md ("Rate limits").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis.asyncio as aioredis
from litestar.connection import ASGIConnection
from redis.exceptions import RedisError

from app.addresses.emails import normalize_email
from app.analytics.ingest.client_ip import Network, request_client_ip
from app.errors import RateLimited, Unavailable
from app.store import keys

log = logging.getLogger(__name__)

# IPv6 addresses count per /64, which one host usually holds whole.
IPV6_GROUP_PREFIX = 64
# The `opt` key of a route handler (or router) that holds its rules; see `limited`.
OPT_KEY = "rate_limit"
# Requests whose address is unknown (no peer, e.g. a Unix socket) share one counter.
UNKNOWN_CLIENT = "0.0.0.0"
UNCHECKED = "Request limits cannot be checked right now; try again shortly"

# A sliding-window counter, one atomic script per hit: the key holds the counts of the current
# and the previous fixed window, and a hit is allowed while the previous count, weighted by how
# much of the previous window still overlaps the sliding one, plus the current count stays within
# the limit. So no burst of twice the limit across a window boundary (the weakness of fixed
# windows), for one small hash per subject (a sliding log would cost an entry per attempt).
# Refused attempts are not counted: the retry-after is the exact time until an attempt is allowed
# again, up to twice the window after a full window of hits. The script reads Redis's clock
# (`TIME`), so web processes with drifting clocks share one timeline, and sets the key's TTL at
# every hit: no key ever lives without one.
# KEYS[1]: a hash {start, curr, prev}; ARGV[1]: window in ms; ARGV[2]: limit.
# Returns {allowed (1/0), remaining, retry after in ms}.
_HIT_SCRIPT = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'start', 'curr', 'prev')
local start = tonumber(state[1]) or now
local curr = tonumber(state[2]) or 0
local prev = tonumber(state[3]) or 0
local elapsed = now - start
if elapsed >= 2 * window then
  start, curr, prev, elapsed = now, 0, 0, 0
elseif elapsed >= window then
  start, prev, curr, elapsed = start + window, curr, 0, elapsed - window
end
local used = prev * (window - elapsed) / window + curr
if used + 1 <= limit then
  redis.call('HSET', KEYS[1], 'start', start, 'curr', curr + 1, 'prev', prev)
  redis.call('PEXPIRE', KEYS[1], 2 * window - elapsed)
  return {1, math.floor(limit - used - 1), 0}
end
local wait
if curr + 1 <= limit then
  -- the previous window's share fades within this window
  wait = math.ceil(window * (1 - (limit - 1 - curr) / prev)) - elapsed
else
  -- this window is full: wait for it to end, then for its share to fade
  wait = (window - elapsed) + math.ceil(window * (1 - (limit - 1) / curr))
end
return {0, 0, math.max(wait, 1)}
"""


class Scope(Enum):
    IP = "ip"
    ACCOUNT = "account"
    USER = "user"
    ACCOUNT_IP = "account-ip"  # an account tried from one address: see `account_at`
    KEY = "api-key"  # a Stats API key (its id)


# Rules fail closed by default: those in front of passwords, codes, tokens and outgoing email are
# what stands between them and a script, and failing open would let anyone who can exhaust or
# disturb the cache Redis switch them off without a trace. The broad budgets (`fail_open=True`)
# protect capacity, not secrets, and sessions live on the other Redis: a cache outage lets their
# requests through, with a warning in the log.
@dataclass(frozen=True)
class Rule:
    name: str
    scope: Scope
    limit: int
    window_seconds: int
    fail_open: bool = False  # when Redis is unreachable: allow (True) or answer 503 (False)


# --- counted by the flows (the subject is a submitted email) or declared on auth routes ---

# A household or office behind one address mistyping, not a credential-stuffing run.
LOGIN_PER_IP = Rule("login:ip", Scope.IP, limit=20, window_seconds=10 * 60)
# Failed logins (and password re-checks) at one account, from anywhere: 10 per 15 minutes is
# ~1,000 guesses a day. A login that succeeds resets it. Past it, an address gets the 429 only if
# it has failed at the account itself (`LOGIN_PER_ACCOUNT_IP`), so nobody can lock the owner out
# from everywhere with wrong passwords; see `app.accounts.login`.
LOGIN_PER_ACCOUNT = Rule("login:account", Scope.ACCOUNT, limit=10, window_seconds=15 * 60)
# Whether an address has failed at an account in the last 15 (to 30) minutes: one attempt, then
# it counts as failing until a login succeeds or the window slides past.
LOGIN_PER_ACCOUNT_IP = Rule("login:account-ip", Scope.ACCOUNT_IP, limit=1, window_seconds=15 * 60)
# Sign-ups send a verification email each: a handful per hour is plenty for a real person.
SIGNUP_PER_IP = Rule("signup:ip", Scope.IP, limit=5, window_seconds=60 * 60)
# Reset requests send email: limit per address, and per account so nobody is mail-bombed.
RESET_PER_IP = Rule("reset:ip", Scope.IP, limit=10, window_seconds=60 * 60)
RESET_PER_ACCOUNT = Rule("reset:account", Scope.ACCOUNT, limit=3, window_seconds=60 * 60)
# Wrong TOTP or recovery codes (an accepted one resets it): 6 digits with ~3 valid at once, so
# 5 per 15 minutes is ~0.14% a day. Reaching it needs the password first.
TOTP_PER_ACCOUNT = Rule("totp:account", Scope.ACCOUNT, limit=5, window_seconds=15 * 60)

# --- declared on routes: budgets and costly actions ---

# Default of every logged-in route. A dashboard is a page and 7 cards, so 300 a minute is ~35
# dashboards (or period switches) a minute: beyond any person, short of a script's loop.
APP_PER_USER = Rule("app:user", Scope.USER, limit=300, window_seconds=60, fail_open=True)
# Default of every login-free page (forms, emailed links): an office behind one address.
PAGES_PER_IP = Rule("pages:ip", Scope.IP, limit=300, window_seconds=60, fail_open=True)
# Public and shared dashboards, whose every card is a ClickHouse query: ~20 dashboards a minute
# per address. Behind a CDN (`public` views are cacheable) only its misses reach us anyway.
SHARED_VIEW_PER_IP = Rule("shared-view:ip", Scope.IP, limit=160, window_seconds=60, fail_open=True)
# Exports read every rollup of a period at once: a few to compare periods, not a mirror.
EXPORT_PER_USER = Rule("export:user", Scope.USER, limit=10, window_seconds=10 * 60, fail_open=True)
# Sites, organizations and shared links (argon2-hashed passwords): a person sets up a handful.
CREATE_PER_USER = Rule("create:user", Scope.USER, limit=30, window_seconds=60 * 60)
# Each invitation emails an address the sender chose: a team's worth an hour, not a spam run.
INVITATION_SEND_PER_USER = Rule(
    "invitation-send:user", Scope.USER, limit=50, window_seconds=60 * 60
)
# Account changes that send an email (password, address, deletion request).
ACCOUNT_CHANGE_PER_USER = Rule("account-change:user", Scope.USER, limit=10, window_seconds=60 * 60)


# Every Stats API key: Plausible's default of 600 requests an hour, spread over the hour. The
# API reads raw events for breakdowns, so a script's loop would cost every dashboard.
API_PER_KEY = Rule("api:key", Scope.KEY, limit=600, window_seconds=60 * 60, fail_open=True)


def account_at(email: str, address: str) -> str:
    """The subject of an ACCOUNT_IP rule: the account `email` tried from client `address`."""
    return f"{email} {address}"


def limited(*rules: Rule) -> dict[str, tuple[Rule, ...]]:
    """The `opt` declaring that a route handler's requests count under `rules`.

    Litestar merges `opt` from router to handler, so a handler's rules replace the router's
    default: name both if both should count. Only IP and USER rules can be declared: the subject
    of ACCOUNT and ACCOUNT_IP rules is an email from the submitted form, so the flows (login,
    password reset, 2FA, re-entering a password) count those with `Limiter.enforce`.
    """
    for rule in rules:
        if rule.scope in (Scope.ACCOUNT, Scope.ACCOUNT_IP):
            raise ValueError(f"{rule.name} needs the submitted email: count it in the flow")
    return {OPT_KEY: rules}


def declared(opt: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The rules a route handler's (merged) `opt` declares; none for an exempt route."""
    rules: tuple[Rule, ...] = opt.get(OPT_KEY, ())
    return rules


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until an attempt is allowed again; 0 when allowed
    remaining: int  # hits still allowed right now


class Limiter:
    """Counts hits per (rule, subject) in Redis; `enforce` raises `RateLimited` when refused.

    `trusted` are the reverse proxies whose `X-Forwarded-For` names the client (IP rules).
    """

    def __init__(self, redis: aioredis.Redis, secret: str, trusted: Sequence[Network] = ()) -> None:
        if not secret:
            raise ValueError("the rate limiter needs SECRET_KEY to hash its keys")
        self._redis = redis
        self._script = redis.register_script(_HIT_SCRIPT)
        self._trusted = trusted
        self._key = hmac.digest(secret.encode(), b"ursa rate-limit keys", hashlib.sha256)

    def key(self, rule: Rule, subject: str) -> str:
        """The Redis key counting `subject` under `rule`; it holds no email and no IP.

        `ursa:rl:<rule>:<HMAC(subject)>`, under a key derived from `SECRET_KEY`. An account's
        subject is its normalised email and the limiter never looks the account up, so an
        unknown address is limited exactly like a known one.
        """
        message = f"{rule.name}\0{_normalise(rule.scope, subject)}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
        return f"{keys.RATE_LIMIT}{rule.name}:{digest}"

    async def hit(self, rule: Rule, subject: str) -> Decision:
        """Count one attempt. Redis unreachable: allowed for a `fail_open` rule, else raise
        `Unavailable` (fail closed)."""
        args = [rule.window_seconds * 1000, rule.limit]
        try:
            allowed, remaining, wait_ms = await self._script(
                keys=[self.key(rule, subject)], args=args
            )
        except RedisError as exc:
            if rule.fail_open:
                log.warning("rate limit %s not checked, the cache Redis failed: %s", rule.name, exc)
                return Decision(allowed=True, retry_after=0, remaining=rule.limit)
            raise Unavailable(UNCHECKED) from exc
        if allowed:
            return Decision(allowed=True, retry_after=0, remaining=int(remaining))
        return Decision(allowed=False, retry_after=max(1, math.ceil(wait_ms / 1000)), remaining=0)

    async def reset(self, rule: Rule, subject: str) -> None:
        """Forget the hits of `subject` under `rule` (a login that succeeded)."""
        try:
            await self._redis.delete(self.key(rule, subject))
        except RedisError as exc:
            raise Unavailable(UNCHECKED) from exc

    async def enforce(self, rule: Rule, subject: str) -> None:
        """Count one attempt; raise `RateLimited` (429) when refused."""
        decision = await self.hit(rule, subject)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)

    async def enforce_declared(
        self,
        rules: Sequence[Rule],
        connection: ASGIConnection[Any, Any, Any, Any],
        user_id: int | None,
        key_id: int | None = None,
    ) -> None:
        """`enforce` each declared rule, in order, for the client address, the logged-in user
        or the Stats API key (a rule refusing leaves the ones before it counted: routes
        declare one rule, or a budget before a tighter limit)."""
        for rule in rules:
            if rule.scope in (Scope.USER, Scope.KEY):
                subject = user_id if rule.scope is Scope.USER else key_id
                if subject is None:
                    path = connection.scope["path"]
                    raise RuntimeError(f"{rule.name} counts per {rule.scope.value}, not on {path}")
                await self.enforce(rule, str(subject))
            else:
                await self.enforce(rule, self.client_address(connection))

    def client_address(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The address IP rules count the request under (`TRUSTED_PROXIES` honoured)."""
        scope = connection.scope
        address = request_client_ip(scope.get("client"), scope["headers"], self._trusted)
        return address or UNKNOWN_CLIENT


def _normalise(scope: Scope, subject: str) -> str:
    if scope is Scope.ACCOUNT:
        return normalize_email(subject)
    if scope in (Scope.USER, Scope.KEY):
        return str(int(subject))
    if scope is Scope.ACCOUNT_IP:
        email, _, client = subject.rpartition(" ")
        return account_at(normalize_email(email), _normalise(Scope.IP, client))
    address = ipaddress.ip_address(subject)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_GROUP_PREFIX}", strict=False))
    return str(address)
