"""Rate limits declared on routes: every route has one or is exempt on purpose, and they count.

The routes come from the app's own route table (as in `test_authorization`), so a route added
without a declaration fails `test_every_route_declares_a_limit`, and one added to the machine
paths fails `test_machine_routes_are_never_limited` unless it is listed with its reason.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar.handlers import BaseRouteHandler
from litestar.routes import ASGIRoute, HTTPRoute

from app.accounts.request_auth import CookieNames, RateLimits, login_required
from app.accounts.web_sessions import Stage
from app.cache.ratelimit import Rule, Scope, declared, limited
from app.main import create_app
from app.models import User
from app.services import Services
from tests.conftest import (
    csrf_token,
    free_port,
    log_in,
    logged_in,
    make_client,
    new_user,
    random_peer,
)

pytestmark = pytest.mark.db

# Never limited, and why. Nothing else may go without a declared rule.
EXEMPT = {
    ("POST", "/api/event"): "ingest: the tracker never retries, so a 429 would lose the event",
    ("GET", "/js/script.js"): "the tracker script: every tracked page loads it, CDNs cache it",
    ("GET", "/static/{file_path:path}"): "static files: immutable, cached by browsers and CDNs",
    ("POST", "/billing/webhook"): "Stripe's webhook: bursts from Stripe's few addresses, the "
    "signature is checked before any work, and a refused delivery would only come again later",
    ("GET", "/healthz"): "the orchestrator's liveness probe",
    ("GET", "/readyz"): "the orchestrator's readiness probe",
}


def handlers(services: Services) -> Iterator[tuple[str, str, BaseRouteHandler]]:
    """(method, path template, handler) of every route, HEAD/OPTIONS left out."""
    for route in create_app(services.settings, services).routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                    yield method, route.path, handler
        else:
            assert isinstance(route, ASGIRoute)
            yield "POST", route.path, route.route_handler  # the ingest app


def test_machine_routes_are_never_limited(services):
    found = {(method, path): handler for method, path, handler in handlers(services)}
    assert EXEMPT.keys() - found.keys() == set(), "exempt routes that do not exist"
    for key in EXEMPT:
        handler = found[key]
        assert declared(handler.opt) == (), key
        assert not [guard for guard in handler.resolve_guards() if isinstance(guard, RateLimits)]


def test_every_route_declares_a_limit(services):
    for method, path, handler in handlers(services):
        if (method, path) in EXEMPT:
            continue
        rules = declared(handler.opt)
        assert rules, f"{method} {path} declares no rate limit"
        guards = handler.resolve_guards()
        counters = [guard for guard in guards if isinstance(guard, RateLimits)]
        assert len(counters) == 1, f"{method} {path} is not behind the rate-limit guard"
        if any(rule.scope is Scope.USER for rule in rules):
            # the login guard runs first, so a per-user rule always has a user
            assert login_required in guards, f"{method} {path}: per-user rule without a login"
            assert guards.index(login_required) < guards.index(counters[0])


def test_rules_keyed_by_a_submitted_email_cannot_be_declared():
    with pytest.raises(ValueError, match="submitted email"):
        limited(Rule("test-account", Scope.ACCOUNT, limit=1, window_seconds=60))


# --- through the app: a small per-user default ---


def _small_default(monkeypatch: pytest.MonkeyPatch, limit: int) -> Rule:
    """The logged-in routes' default, shrunk to `limit` requests per 10 minutes."""
    rule = Rule(f"test-app-{secrets.token_hex(4)}", Scope.USER, limit, 600, fail_open=True)
    monkeypatch.setattr("app.main.APP_PER_USER", rule)
    return rule


async def _spend(http: httpx.AsyncClient, limit: int) -> None:
    for _ in range(limit):
        assert (await http.get("/account")).status_code == 200


@asynccontextmanager
async def _logged_in_from(
    services: Services, user: User, peer: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services, peer=peer, scheme="https") as http:
        assert (await log_in(http, user.email)).status_code == 303
        yield http


async def test_a_declared_per_user_limit_answers_429_per_user(services, monkeypatch):
    rule = _small_default(monkeypatch, limit=3)
    first, second = await new_user(services), await new_user(services)
    peer = random_peer()
    async with _logged_in_from(services, first, peer) as http:
        await _spend(http, rule.limit)
        as_json = await http.get("/account", headers={"Accept": "application/json"})
        page = await http.get("/account", headers={"Accept": "text/html"})
        fragment = await http.get("/account", headers={"HX-Request": "true", "Accept": "*/*"})
    for refused in (as_json, page, fragment):
        assert refused.status_code == 429
        # the window of 600 s ends, then its three hits must fade to two: 200 s more
        assert 798 <= int(refused.headers["retry-after"]) <= 800
    assert as_json.json()["retry_after"] == int(as_json.headers["retry-after"])
    assert "Too many attempts" in as_json.json()["error"]
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text
    assert "Too many attempts" in page.text
    assert "<html" not in fragment.text
    assert "Too many attempts" in fragment.text
    # Another user, from the same address, has a budget of their own.
    async with _logged_in_from(services, second, peer) as http:
        assert (await http.get("/account")).status_code == 200


async def test_a_route_with_its_own_rule_does_not_spend_the_default(services, monkeypatch):
    _small_default(monkeypatch, limit=2)
    async with logged_in(services, await new_user(services)) as http:
        token = await csrf_token(http, "/orgs")  # the first request of the default's two
        assert (await http.get("/account")).status_code == 200
        assert (await http.get("/account")).status_code == 429
        # `POST /orgs` declares `CREATE_PER_USER` instead of the exhausted default
        created = await http.post("/orgs", data={"name": "Side project", "csrf_token": token})
    assert created.status_code == 303


async def test_per_user_budgets_let_requests_through_when_the_cache_redis_is_down(
    settings, clickhouse
):
    """`APP_PER_USER` fails open: a cache outage does not take every page down with it."""
    dead = settings.model_copy(update={"CACHE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    services = Services(dead, gateway=clickhouse)
    user = await new_user(services)
    assert user.id is not None
    token, _ = await services.web_sessions.create(user.id, Stage.FULL)  # no login: it fails closed
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        http.cookies.set(CookieNames.of(dead).session, token)
        response = await http.get("/account")
    await services.aclose()
    assert response.status_code == 200
    assert user.email in response.text
