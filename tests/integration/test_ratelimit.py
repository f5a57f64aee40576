"""Rate limits on a real redis-server: counting, expiry, hashed keys, the 429 answers, Redis down."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from litestar import Router, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from app.accounts.request_auth import CookieNames, RateLimits, RequestAuth, csrf_token_for
from app.accounts.users import create_user
from app.cache.ratelimit import (
    LOGIN_PER_ACCOUNT,
    Decision,
    Limiter,
    Rule,
    Scope,
    account_at,
    limited,
)
from app.errors import Unavailable
from app.main import create_app
from app.services import Services
from app.settings import Settings
from tests.conftest import free_port

SECRET = "test-secret"


def _rule(limit: int = 3, window_seconds: int = 600, scope: Scope = Scope.IP) -> Rule:
    return Rule(f"test-{secrets.token_hex(4)}", scope, limit=limit, window_seconds=window_seconds)


def _email() -> str:
    return f"jo-{secrets.token_hex(4)}@example.com"


@pytest.fixture
async def redis_client(redis_process) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_process.url)
    yield client
    await client.aclose()


@pytest.fixture
def limiter(redis_client) -> Limiter:
    return Limiter(redis_client, SECRET)


async def test_allows_exactly_the_limit_then_refuses_until_the_window_slides(limiter):
    rule = _rule(limit=3, window_seconds=600)
    decisions = [await limiter.hit(rule, "203.0.113.7") for _ in range(5)]
    assert decisions[:3] == [
        Decision(allowed=True, retry_after=0, remaining=2),
        Decision(allowed=True, retry_after=0, remaining=1),
        Decision(allowed=True, retry_after=0, remaining=0),
    ]
    for refused in decisions[3:]:
        assert not refused.allowed
        assert refused.remaining == 0
        # The full window ends in ~600 s; its three hits then weigh 3 x (600 - t) / 600 in the
        # sliding window, below 2 (room for one more) after another 200 s.
        assert 798 <= refused.retry_after <= 800


async def test_no_burst_of_twice_the_limit_across_a_window_boundary(limiter, redis_client):
    rule = _rule(limit=4, window_seconds=1)
    key = limiter.key(rule, "203.0.113.9")
    assert all([(await limiter.hit(rule, "203.0.113.9")).allowed for _ in range(4)])
    # Move the window start back 1.25 s: the four hits now belong to the previous window,
    # a quarter of the way past it, and still weigh 4 x 0.75 = 3 in the sliding window.
    start = int(await redis_client.hget(key, "start"))
    await redis_client.hset(key, "start", start - 1250)
    after_boundary = [(await limiter.hit(rule, "203.0.113.9")).allowed for _ in range(3)]
    assert after_boundary == [True, False, False]  # a fixed window would allow all four


async def test_subjects_and_rules_count_separately(limiter):
    rule, other_rule = _rule(limit=1), _rule(limit=1)
    assert (await limiter.hit(rule, "203.0.113.7")).allowed
    assert not (await limiter.hit(rule, "203.0.113.7")).allowed
    assert (await limiter.hit(rule, "203.0.113.8")).allowed
    assert (await limiter.hit(other_rule, "203.0.113.7")).allowed


async def test_ipv6_addresses_count_per_64(limiter):
    rule = _rule(limit=1)
    assert (await limiter.hit(rule, "2001:db8:1:2::1")).allowed
    assert not (await limiter.hit(rule, "2001:db8:1:2:ffff::9")).allowed
    assert (await limiter.hit(rule, "2001:db8:1:3::1")).allowed


async def test_every_key_has_a_ttl_and_expires(limiter, redis_client):
    rule = _rule(limit=1, window_seconds=1)
    assert (await limiter.hit(rule, "203.0.113.7")).allowed
    refused = await limiter.hit(rule, "203.0.113.7")
    assert not refused.allowed
    assert refused.retry_after == 2  # the window ends, then its one hit must fade entirely
    key = limiter.key(rule, "203.0.113.7")
    assert 0 < await redis_client.pttl(key) <= 2000
    await asyncio.sleep(2.1)
    assert await redis_client.exists(key) == 0
    assert (await limiter.hit(rule, "203.0.113.7")).allowed


async def test_keys_hold_no_email_or_ip(limiter, redis_client):
    email = _email()
    account_rule = _rule(scope=Scope.ACCOUNT)
    await limiter.hit(account_rule, email)
    await limiter.hit(_rule(), "203.0.113.7")
    keys = [key.decode() async for key in redis_client.scan_iter(match="ursa:rl:*")]
    assert limiter.key(account_rule, email) in keys
    local_part = email.split("@")[0]
    assert not [key for key in keys if local_part in key or "example" in key or "203.0" in key]
    assert Limiter(redis_client, "another-secret").key(account_rule, email) not in keys


async def test_account_keys_use_the_normalised_email(limiter):
    rule = _rule(limit=1, scope=Scope.ACCOUNT)
    email = _email()
    assert (await limiter.hit(rule, email)).allowed
    assert not (await limiter.hit(rule, f"  {email.upper()} ")).allowed


async def test_account_at_address_keys_normalise_both_and_hold_neither(limiter, redis_client):
    rule = _rule(limit=1, scope=Scope.ACCOUNT_IP)
    email = _email()
    assert (await limiter.hit(rule, account_at(email, "2001:db8:1:2::1"))).allowed
    assert not (await limiter.hit(rule, account_at(email.upper(), "2001:db8:1:2::9"))).allowed
    assert (await limiter.hit(rule, account_at(email, "2001:db8:1:3::1"))).allowed
    assert (await limiter.hit(rule, account_at(_email(), "2001:db8:1:2::1"))).allowed
    key = limiter.key(rule, account_at(email, "2001:db8:1:2::1"))
    assert email.split("@")[0] not in key
    assert "2001" not in key
    assert await redis_client.exists(key) == 1


async def test_reset_forgets_a_subject_only(limiter, redis_client):
    rule = _rule(limit=2, scope=Scope.ACCOUNT)
    mine, theirs = _email(), _email()
    for email in (mine, mine, theirs, theirs):
        assert (await limiter.hit(rule, email)).allowed
    await limiter.reset(rule, mine.upper())
    assert await redis_client.exists(limiter.key(rule, mine)) == 0
    assert [(await limiter.hit(rule, mine)).allowed for _ in range(3)] == [True, True, False]
    assert not (await limiter.hit(rule, theirs)).allowed


@pytest.mark.db
async def test_an_unknown_account_is_limited_exactly_like_a_known_one(settings, limiter):
    services = Services(settings)
    known, unknown = _email(), _email()
    await create_user(services.sessions, known, "correct horse battery staple")
    await services.aclose()
    rule = _rule(limit=2, scope=Scope.ACCOUNT)
    known_decisions = [await limiter.hit(rule, known) for _ in range(3)]
    unknown_decisions = [await limiter.hit(rule, unknown) for _ in range(3)]
    assert known_decisions == unknown_decisions


async def test_redis_down_fails_closed():
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable):
        await Limiter(dead, SECRET).hit(LOGIN_PER_ACCOUNT, _email())
    await dead.aclose()


async def test_redis_down_lets_a_fail_open_rule_through():
    dead = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    rule = Rule(
        f"test-{secrets.token_hex(4)}", Scope.USER, limit=1, window_seconds=60, fail_open=True
    )
    decisions = [await Limiter(dead, SECRET).hit(rule, "7") for _ in range(2)]
    await dead.aclose()
    assert decisions == [Decision(allowed=True, retry_after=0, remaining=1)] * 2


async def test_user_rules_count_per_user_id(limiter):
    rule = _rule(limit=1, scope=Scope.USER)
    assert (await limiter.hit(rule, "42")).allowed
    assert not (await limiter.hit(rule, "42")).allowed
    assert (await limiter.hit(rule, "43")).allowed
    assert limiter.key(rule, "42") == limiter.key(rule, "042")  # the id, not its spelling


# --- through the app: a stand-in for the login routes of a later change ---

PROBE_RULE = Rule("test-probe", Scope.ACCOUNT, limit=1, window_seconds=300)
PROBE_IP_RULE = Rule(f"test-probe-ip-{secrets.token_hex(4)}", Scope.IP, limit=1, window_seconds=60)


@post("/test/login")
async def login_probe(
    services: NamedDependency[Services], data: JSONBody[dict[str, str]]
) -> dict[str, str]:
    await services.limiter.enforce(PROBE_RULE, data["email"])
    return {"ok": "yes"}


@post("/test/signup", opt=limited(PROBE_IP_RULE))
async def signup_probe() -> dict[str, str]:
    return {"ok": "yes"}


async def _client_for(
    settings: Settings, peer: str = "198.51.100.1"
) -> tuple[Services, httpx.AsyncClient]:
    services = Services(settings)
    app = create_app(settings, services)
    app.register(login_probe)
    app.register(Router("/", guards=[RateLimits(services)], route_handlers=[signup_probe]))
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    # A browser that loaded a form: the CSRF cookie and the token that goes with it.
    seed = secrets.token_urlsafe(16)
    token = csrf_token_for(RequestAuth(session=None, csrf_cookie=seed), settings.SECRET_KEY)
    client = httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        cookies={CookieNames.of(settings).csrf: seed},
        headers={"X-CSRF-Token": token},
    )
    return services, client


@pytest.fixture
async def http(settings) -> AsyncIterator[httpx.AsyncClient]:
    services, client = await _client_for(settings)
    async with client:
        yield client
    await services.aclose()


async def _locked_out(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"email": _email()}
    assert (await http.post("/test/login", json=body, headers=headers)).status_code == 201
    return await http.post("/test/login", json=body, headers=headers)


async def test_429_as_json_with_retry_after(http):
    response = await _locked_out(http, {"Accept": "application/json"})
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    assert 598 <= retry_after <= 600
    assert response.json() == {
        "error": "Too many attempts — try again in 10 minutes",
        "retry_after": retry_after,
    }


async def test_429_as_a_friendly_page_for_browsers(http):
    response = await _locked_out(http, {"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert 598 <= int(response.headers["retry-after"]) <= 600
    assert "<html" in response.text
    assert "· Ursa</title>" in response.text
    assert "Too many attempts — try again in 10 minutes" in response.text


async def test_429_as_a_fragment_for_htmx(http):
    response = await _locked_out(http, {"HX-Request": "true", "Accept": "*/*"})
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert 598 <= int(response.headers["retry-after"]) <= 600
    assert "<html" not in response.text
    assert "Too many attempts — try again in 10 minutes" in response.text


async def test_ip_rules_count_the_client_address(settings):
    clients = [await _client_for(settings, peer) for peer in ("198.51.100.7", "198.51.100.8")]
    statuses = []
    for services, client in clients:
        async with client:
            statuses += [(await client.post("/test/signup")).status_code for _ in range(2)]
        await services.aclose()
    assert statuses == [201, 429, 201, 429]


async def test_app_answers_503_when_the_cache_redis_is_down(settings):
    dead = settings.model_copy(update={"CACHE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    services, client = await _client_for(dead)
    async with client:
        response = await client.post(
            "/test/login", json={"email": _email()}, headers={"Accept": "application/json"}
        )
    await services.aclose()
    assert response.status_code == 503
    assert response.json() == {
        "error": "Request limits cannot be checked right now; try again shortly"
    }
