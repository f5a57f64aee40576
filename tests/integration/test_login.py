"""Logging in and out: server-side sessions, rotation, redirects, CSRF and the security email."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from app.accounts.request_auth import (
    CSRF_EXEMPT_PATHS,
    CookieNames,
    RequestAuth,
    WebAuthMiddleware,
    csrf_token_for,
)
from app.cache.ratelimit import LOGIN_PER_ACCOUNT, LOGIN_PER_IP
from tests.conftest import (
    PASSWORD,
    PROXY_IP,
    csrf_token,
    log_in,
    logged_in,
    make_client,
    new_user,
    random_peer,
)
from tests.integration.account_helpers import sign_up

pytestmark = pytest.mark.db
HTMX_TOKEN = re.compile(r'"X-CSRF-Token": "([^"]+)"')


async def page_token(http: httpx.AsyncClient) -> str:
    """The CSRF token htmx sends from a logged-in page."""
    token = HTMX_TOKEN.search((await http.get("/")).text)
    assert token
    return token[1]


async def test_a_page_behind_login_redirects_there_and_comes_back(services, owner, site_domain):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        page = await http.get(f"/{site_domain}?period=7d")
        assert page.status_code == 302
        assert page.headers["location"] == f"/login?next=/{site_domain}%3Fperiod%3D7d"

        token = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/login")).text)
        assert token
        form = {
            "email": owner.email.upper(),
            "password": PASSWORD,
            "next": f"/{site_domain}?period=7d",
            "csrf_token": token[1],
        }
        answer = await http.post("/login", data=form)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/{site_domain}?period=7d"
        assert (await http.get(f"/{site_domain}")).status_code == 200


async def test_htmx_requests_get_hx_redirect_not_a_login_page(services, site_domain):
    async with make_client(services, scheme="https") as http:
        headers = {"HX-Request": "true", "HX-Current-URL": f"https://testserver/{site_domain}"}
        response = await http.get(f"/{site_domain}/cards/overview", headers=headers)
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == f"/login?next=/{site_domain}"
    assert response.text == ""


async def test_the_session_cookie_is_host_prefixed_secure_httponly_lax(services, owner):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        response = await log_in(http, owner.email)
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("__Host-ursa_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "path"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "domain" not in attributes


async def test_login_rotates_the_session_and_logout_ends_it(services, owner):
    names = CookieNames.of(services.settings)
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        await log_in(http, owner.email)
        first = http.cookies[names.session]
        # Logging in again (from another tab) replaces the session, never reuses it.
        form = {"email": owner.email, "password": PASSWORD, "csrf_token": await page_token(http)}
        assert (await http.post("/login", data=form)).status_code == 303
        second = http.cookies[names.session]
        assert first != second
        assert await services.web_sessions.load(first) is None
        assert await services.web_sessions.load(second) is not None

        out = await http.post("/logout", headers={"X-CSRF-Token": await page_token(http)})
        assert out.status_code == 303
        assert await services.web_sessions.load(second) is None
        assert (await http.get("/")).status_code == 302


async def test_wrong_password_and_unknown_email_get_the_same_answer(services, owner):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        wrong = await log_in(http, owner.email, "not the password at all")
        unknown = await log_in(http, "nobody-here@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert "do not match an account" in wrong.text
    assert wrong.text.replace(owner.email, "") == unknown.text.replace(
        "nobody-here@example.com", ""
    )
    assert "set-cookie" not in wrong.headers or "ursa_session" not in wrong.headers["set-cookie"]


async def test_unverified_accounts_cannot_log_in(services):
    user = await new_user(services, verified=False)
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        response = await log_in(http, user.email)
    assert response.status_code == 400
    assert "Confirm your email address" in response.text


async def test_a_post_without_csrf_token_is_refused(services, owner):
    async with logged_in(services, owner) as http:
        response = await http.post("/logout")
        assert response.status_code == 403
        assert "did not come from Ursa" in response.json()["error"]
        forged = await http.post("/logout", headers={"X-CSRF-Token": "0" * 64})
        assert forged.status_code == 403
        assert (await http.get("/")).status_code == 200  # still logged in


async def test_a_token_minted_before_login_is_refused_after_it(services, owner):
    names = CookieNames.of(services.settings)
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        before = await csrf_token(http)
        anonymous_seed = http.cookies[names.csrf]
        form = {"email": owner.email, "password": PASSWORD, "csrf_token": before}
        assert (await http.post("/login", data=form)).status_code == 303
        assert http.cookies[names.csrf] != anonymous_seed  # a new seed for the next logout
        stale = await http.post("/logout", headers={"X-CSRF-Token": before})
        assert stale.status_code == 403
        assert "did not come from Ursa" in stale.json()["error"]
        # Nor does a token of the new anonymous seed: a login session takes only its own.
        secret = services.settings.SECRET_KEY
        seed_token = csrf_token_for(RequestAuth(None, http.cookies[names.csrf]), secret)
        assert (await http.post("/logout", headers={"X-CSRF-Token": seed_token})).status_code == 403
        assert (await http.get("/")).status_code == 200  # still logged in
        out = await http.post("/logout", headers={"X-CSRF-Token": await page_token(http)})
        assert out.status_code == 303


async def test_the_anonymous_seed_changes_at_logout_and_the_logged_out_forms_work(services, owner):
    names = CookieNames.of(services.settings)
    async with logged_in(services, owner) as http:
        seed_while_logged_in = http.cookies[names.csrf]
        logged_in_token = await page_token(http)
        out = await http.post("/logout", headers={"X-CSRF-Token": logged_in_token})
        assert out.status_code == 303
        assert http.cookies[names.csrf] != seed_while_logged_in
        assert (
            await http.post("/logout", headers={"X-CSRF-Token": logged_in_token})
        ).status_code == 403

        assert (await log_in(http, owner.email)).status_code == 303
        out = await http.post("/logout", headers={"X-CSRF-Token": await page_token(http)})
        assert out.status_code == 303
        email = f"signup-{secrets.token_hex(6)}@example.com"
        signed_up = await sign_up(http, email, PASSWORD)
        assert signed_up.status_code == 303
        assert signed_up.headers["location"] == "/signup/sent"


def test_csrf_exemptions_are_exactly_ingest_and_the_stripe_webhook():
    assert CSRF_EXEMPT_PATHS == ("/api/event", "/billing/webhook")


async def test_cookieless_paths_set_no_cookie(services, site_domain):
    async with make_client(services, scheme="https") as http:
        for path in ("/js/script.js", "/static/css/app.css", "/healthz"):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert "set-cookie" not in response.headers, path
        event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
        response = await http.post("/api/event", json=event)
        assert response.status_code == 202
        assert "set-cookie" not in response.headers


async def test_account_lockout_looks_the_same_for_unknown_emails(services, owner):
    async def attempts(email: str) -> list[httpx.Response]:
        peer, answers = random_peer(), []
        for _ in range(LOGIN_PER_ACCOUNT.limit + 1):
            async with make_client(services, peer=peer, scheme="https") as http:
                answers.append(await log_in(http, email, "wrong password, again"))
        return answers

    known, unknown = await attempts(owner.email), await attempts("nobody-else@example.com")
    assert [r.status_code for r in known] == [400] * LOGIN_PER_ACCOUNT.limit + [429]
    assert [r.status_code for r in unknown] == [r.status_code for r in known]
    # Both windows started moments apart: the countdowns match to within a few seconds.
    waits = [int(r.headers["retry-after"]) for r in (known[-1], unknown[-1])]
    assert abs(waits[0] - waits[1]) <= 5
    assert known[-1].json()["error"] == unknown[-1].json()["error"]


async def test_login_per_ip_limit(services):
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        statuses = [
            (await log_in(http, f"guess-{n}@example.com", "wrong password")).status_code
            for n in range(LOGIN_PER_IP.limit + 1)
        ]
    assert statuses == [400] * LOGIN_PER_IP.limit + [429]


async def test_login_per_ip_limit_behind_a_proxy_that_adds_its_own_forwarded_for_line(
    proxied_services,
):
    """The client's own X-Forwarded-For line, a new address each time, does not escape it."""
    client = random_peer()
    async with make_client(proxied_services, PROXY_IP, "https", proxy_adds=client) as http:
        statuses = []
        for n in range(LOGIN_PER_IP.limit + 1):
            http.headers["X-Forwarded-For"] = f"203.0.113.{n + 1}"
            response = await log_in(http, f"guess-{n}@example.com", "wrong password")
            statuses.append(response.status_code)
    assert statuses == [400] * LOGIN_PER_IP.limit + [429]
    # Counted per client, not per proxy: another client behind it is not locked out.
    async with make_client(proxied_services, PROXY_IP, "https", proxy_adds=random_peer()) as http:
        http.headers["X-Forwarded-For"] = client  # not even when it names the locked-out one
        assert (await log_in(http, "guess@example.com", "wrong password")).status_code == 400


def test_only_exact_machine_paths_and_asset_folders_skip_the_login_layer():
    skips = WebAuthMiddleware.should_bypass_for_scope
    for path in ("/api/event", "/healthz", "/readyz", "/js/script.js", "/static/css/app.css"):
        assert skips({"path": path}), path  # type: ignore[arg-type]
    for path in ("/api/events", "/api/event/x", "/healthz-debug", "/jsx", "/statics"):
        assert not skips({"path": path}), path  # type: ignore[arg-type]
