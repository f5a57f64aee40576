"""The authorization matrix: every route of the app × every kind of caller.

The routes come from the app's own route table, so a route added without an entry in `ACCESS`
fails `test_every_route_has_an_access_rule`. Each cell is one real request with a valid CSRF
token (so only authorization decides): anonymous callers are sent to the login page, members of
another organization and staff (who are not members) get 404, members below the required role
403, and members with it get through (any answer but 401/403/5xx, and 404 only where the path
names a sub-object that the test does not create).
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass

import httpx
import pytest
from litestar.routes import HTTPRoute
from sqlmodel import select

from app.accounts.request_auth import CookieNames, RequestAuth, csrf_token_for
from app.accounts.web_sessions import Stage
from app.main import create_app
from app.models import Invitation, Membership, Role, SharedLink, Site, User
from app.observability.redaction import TOKEN_PATH_PREFIXES
from app.organizations.access import ROLE_RANK
from app.services import Services
from tests.conftest import join, make_client, new_user, random_peer

pytestmark = pytest.mark.db


class Kind(enum.Enum):
    PUBLIC = "no login needed"
    COOKIELESS = "no login, no session, no cookie (tracker, ingest, Stripe webhook, static, health)"
    ACCOUNT = "any logged-in user; acts on their own account"
    SITE = "a member of the site's organization with at least `role`"
    ORGANIZATION = "a member of the organization with at least `role`"
    API_KEY = "a Stats API key (a cookie, even a logged-in one, is no key): 401 without one"


@dataclass(frozen=True)
class Access:
    kind: Kind
    role: Role = Role.VIEWER


PUBLIC = Access(Kind.PUBLIC)
COOKIELESS = Access(Kind.COOKIELESS)
ACCOUNT = Access(Kind.ACCOUNT)
API_KEY = Access(Kind.API_KEY)
ROLES_UP = (Role.VIEWER, Role.ADMIN, Role.OWNER)
SITE_VIEWER, SITE_ADMIN, SITE_OWNER = (Access(Kind.SITE, role) for role in ROLES_UP)
ORG_VIEWER, ORG_ADMIN, ORG_OWNER = (Access(Kind.ORGANIZATION, role) for role in ROLES_UP)

ACCESS: dict[tuple[str, str], Access] = {
    # machines: the tracker, ingestion, static files, health
    ("POST", "/api/event"): COOKIELESS,
    (
        "POST",
        "/billing/webhook",
    ): COOKIELESS,  # Stripe's signature, tests/integration/test_billing_webhook.py
    ("GET", "/healthz"): COOKIELESS,
    ("GET", "/readyz"): COOKIELESS,
    ("GET", "/js/script.js"): COOKIELESS,
    ("GET", "/static/{file_path:path}"): COOKIELESS,
    # the Stats API (tests/integration/test_stats_api.py scopes its keys) and its docs
    ("POST", "/api/v2/query"): API_KEY,
    ("GET", "/api/v1/stats/realtime/visitors"): API_KEY,
    ("GET", "/api/v1/stats/aggregate"): API_KEY,
    ("GET", "/api/v1/stats/timeseries"): API_KEY,
    ("GET", "/api/v1/stats/breakdown"): API_KEY,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/pricing"): PUBLIC,
    ("GET", "/api/schema"): PUBLIC,
    ("GET", "/api/schema/openapi.json"): PUBLIC,
    ("GET", "/api/schema/{path:str}"): PUBLIC,
    # getting in: login, sign-up, links from emails, shared dashboards
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/login/2fa"): PUBLIC,
    ("POST", "/login/2fa"): PUBLIC,
    ("GET", "/signup"): PUBLIC,
    ("POST", "/signup"): PUBLIC,
    ("GET", "/signup/sent"): PUBLIC,
    ("GET", "/signup/resend"): PUBLIC,
    ("POST", "/signup/resend"): PUBLIC,
    ("GET", "/verify-email/{token:str}"): PUBLIC,
    ("POST", "/verify-email/{token:str}"): PUBLIC,
    ("GET", "/password/forgot"): PUBLIC,
    ("POST", "/password/forgot"): PUBLIC,
    ("GET", "/password/forgot/sent"): PUBLIC,
    ("GET", "/password/reset/{token:str}"): PUBLIC,
    ("POST", "/password/reset/{token:str}"): PUBLIC,
    ("GET", "/invitations/{token:str}"): PUBLIC,
    ("GET", "/account/delete/scheduled"): PUBLIC,
    ("GET", "/account/delete/cancel/{token:str}"): PUBLIC,
    ("POST", "/account/delete/cancel/{token:str}"): PUBLIC,
    ("GET", "/public/{domain:str}"): PUBLIC,
    ("GET", "/public/{domain:str}/cards/{card:str}"): PUBLIC,
    ("GET", "/public/{domain:str}/cards/{card:str}/details"): PUBLIC,
    ("GET", "/share/{slug:str}"): PUBLIC,
    ("POST", "/share/{slug:str}"): PUBLIC,
    ("GET", "/share/{slug:str}/cards/{card:str}"): PUBLIC,
    ("GET", "/share/{slug:str}/cards/{card:str}/details"): PUBLIC,
    # one's own account
    ("GET", "/"): ACCOUNT,
    ("GET", "/account"): ACCOUNT,
    ("POST", "/account/password"): ACCOUNT,
    ("POST", "/account/email"): ACCOUNT,
    ("POST", "/account/api-keys"): ACCOUNT,
    ("POST", "/account/api-keys/{key_id:int}/revoke"): ACCOUNT,
    ("GET", "/account/security"): ACCOUNT,
    ("POST", "/account/2fa/setup"): ACCOUNT,
    ("POST", "/account/2fa/confirm"): ACCOUNT,
    ("POST", "/account/2fa/disable"): ACCOUNT,
    ("POST", "/account/2fa/recovery-codes"): ACCOUNT,
    ("GET", "/account/sessions"): ACCOUNT,
    ("POST", "/account/sessions/{public_id:str}/revoke"): ACCOUNT,
    ("POST", "/account/sessions/revoke-others"): ACCOUNT,
    ("GET", "/account/delete"): ACCOUNT,
    ("POST", "/account/delete"): ACCOUNT,
    ("GET", "/orgs"): ACCOUNT,
    ("POST", "/orgs"): ACCOUNT,
    ("GET", "/invitations/{token:str}/accept"): ACCOUNT,
    ("POST", "/invitations/{token:str}/accept"): ACCOUNT,
    ("GET", "/sites/new"): ACCOUNT,
    ("POST", "/sites"): ACCOUNT,
    # an organization
    ("GET", "/orgs/{org_id:int}"): ORG_VIEWER,
    ("POST", "/orgs/{org_id:int}/name"): ORG_OWNER,
    ("POST", "/orgs/{org_id:int}/members/{user_id:int}/role"): ORG_OWNER,
    ("POST", "/orgs/{org_id:int}/members/{user_id:int}/remove"): ORG_OWNER,
    ("POST", "/orgs/{org_id:int}/invitations"): ORG_OWNER,
    ("POST", "/orgs/{org_id:int}/invitations/{invitation_id:int}/revoke"): ORG_OWNER,
    ("GET", "/orgs/{org_id:int}/billing"): ORG_ADMIN,
    ("POST", "/orgs/{org_id:int}/billing/checkout"): ORG_ADMIN,
    ("POST", "/orgs/{org_id:int}/billing/portal"): ORG_ADMIN,
    # a site
    ("GET", "/{domain:str}"): SITE_VIEWER,
    ("GET", "/{domain:str}/cards/{card:str}"): SITE_VIEWER,
    ("GET", "/{domain:str}/export.zip"): SITE_VIEWER,
    ("POST", "/{domain:str}/segments"): SITE_ADMIN,
    ("POST", "/{domain:str}/segments/delete"): SITE_ADMIN,
    ("GET", "/{domain:str}/filter"): SITE_VIEWER,
    ("GET", "/{domain:str}/suggestions"): SITE_VIEWER,
    ("GET", "/{domain:str}/performance"): SITE_VIEWER,
    ("GET", "/{domain:str}/cards/{card:str}/details"): SITE_VIEWER,
    ("GET", "/{domain:str}/install-status"): SITE_VIEWER,
    ("GET", "/{domain:str}/settings"): SITE_ADMIN,
    ("POST", "/{domain:str}/settings/timezone"): SITE_ADMIN,
    ("POST", "/{domain:str}/settings/hostnames"): SITE_ADMIN,
    ("POST", "/{domain:str}/settings/goals"): SITE_ADMIN,
    ("POST", "/{domain:str}/settings/goals/delete"): SITE_ADMIN,
    ("POST", "/{domain:str}/transfer"): SITE_ADMIN,
    ("POST", "/{domain:str}/delete"): SITE_OWNER,
    ("GET", "/{domain:str}/sharing"): SITE_ADMIN,
    ("POST", "/{domain:str}/sharing/public"): SITE_ADMIN,
    ("POST", "/{domain:str}/sharing/links"): SITE_ADMIN,
    ("POST", "/{domain:str}/sharing/links/{link_id:int}/revoke"): SITE_ADMIN,
}

CALLERS = ("anonymous", "other", "staff", "viewer", "admin", "owner")
CALLER_ROLE = {"viewer": Role.VIEWER, "admin": Role.ADMIN, "owner": Role.OWNER}
# Path parameters naming things the matrix does not create: a 404 there is not a refusal.
SUB_OBJECTS = {"user_id", "invitation_id", "link_id", "public_id", "token", "slug", "key_id"}


def app_routes(services: Services) -> list[tuple[str, str, set[str]]]:
    """(method, path template, parameter names) of every route, HEAD/OPTIONS left out."""
    app = create_app(services.settings, services)
    routes = []
    for route in app.routes:
        methods = route.methods if isinstance(route, HTTPRoute) else {"POST"}  # the ingest app
        parameters = set(route.path_parameters)
        for method in sorted(set(methods) - {"HEAD", "OPTIONS"}):
            routes.append((method, route.path, parameters))
    return routes


def test_every_route_has_an_access_rule(services):
    found = {(method, path) for method, path, _ in app_routes(services)}
    assert found - ACCESS.keys() == set(), "routes without an entry in ACCESS"
    assert ACCESS.keys() - found == set(), "entries in ACCESS for routes that do not exist"


def test_every_route_with_a_secret_in_its_path_is_redacted_in_logs(services):
    for _, path, parameters in app_routes(services):
        if parameters & {"token", "slug"}:
            assert path.startswith(TOKEN_PATH_PREFIXES), path


@dataclass
class Caller:
    client: httpx.AsyncClient
    csrf: str


async def caller(services: Services, user: User | None) -> Caller:
    """A client with a fresh session for `user` (none for None) and its CSRF token."""
    names = CookieNames.of(services.settings)
    client = make_client(services, peer=random_peer(), scheme="https")
    if user is None:
        auth = RequestAuth(session=None, csrf_cookie="anonymous-seed")
        client.cookies.set(names.csrf, "anonymous-seed")
    else:
        assert user.id is not None
        token, session = await services.web_sessions.create(user.id, Stage.FULL)
        client.cookies.set(names.session, token)
        auth = RequestAuth(session=session, csrf_cookie=None)
    return Caller(client, csrf_token_for(auth, services.settings.SECRET_KEY))


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: values[match[1]], path)


def expected(access: Access, who: str) -> str:
    if access.kind in (Kind.PUBLIC, Kind.COOKIELESS):
        return "open"
    if who == "anonymous" or access.kind is Kind.API_KEY:
        return "login"
    if access.kind is Kind.ACCOUNT:
        return "allowed"
    if who in ("other", "staff"):
        return "hidden"
    return "allowed" if ROLE_RANK[CALLER_ROLE[who]] >= ROLE_RANK[access.role] else "forbidden"


def verdict(response: httpx.Response, parameters: set[str], outsider: bool) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    if status >= 500:
        return f"server error {status}"
    if (status in (302, 303) and location.startswith("/login")) or status == 401:
        return "login"
    if status == 403:
        return "forbidden"
    # A member may find a sub-object gone (an earlier caller revoked it); to outsiders of the
    # site or organization, 404 is what hides it.
    if status == 404 and (outsider or not parameters & SUB_OBJECTS):
        return "hidden"
    return "allowed"


# The routes in interleaved shares, one test each, so that xdist spreads them over its workers
# (every route for six users in one test took more than 300 s on a loaded host).
SHARES = 6


@pytest.mark.parametrize("share", range(SHARES))
async def test_the_authorization_matrix(services, owner, site_domain, share):
    admin, viewer = await new_user(services), await new_user(services)
    await join(services, admin, site_domain, Role.ADMIN)
    await join(services, viewer, site_domain, Role.VIEWER)
    users: dict[str, User | None] = {
        "anonymous": None,
        "other": await new_user(services),
        "staff": await new_user(services, staff=True),
        "viewer": viewer,
        "admin": admin,
        "owner": owner,
    }
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
        other_id = users["other"].id  # type: ignore[union-attr]
        assert site.organization_id is not None
        assert (
            await session.exec(
                select(Membership).where(
                    Membership.user_id == other_id,
                    Membership.organization_id == site.organization_id,
                )
            )
        ).first() is None
    invitation, _ = Invitation.issue(site.organization_id, "invitee@example.com", Role.VIEWER, None)
    link = SharedLink(site_id=site.id, slug=secrets.token_urlsafe(16))
    async with services.sessions() as session:
        session.add_all([invitation, link])
        await session.commit()
    values = {
        "domain": site_domain,
        "card": "pages",
        "org_id": str(site.organization_id),
        "user_id": str(owner.id),  # the last owner: removing or demoting them is refused
        "invitation_id": str(invitation.id),
        "link_id": str(link.id),
        "public_id": "0" * 16,
        "key_id": "0",
        "token": "no-such-token",
        "slug": "no-such-slug",
        "file_path": "css/app.css",
        "path": "openapi.json",
    }

    mismatches = []
    routes = sorted(app_routes(services), key=lambda route: route[:2])[share::SHARES]
    assert routes, "a share without routes"
    for method, path, parameters in routes:
        access = ACCESS[(method, path)]
        if access.kind is Kind.COOKIELESS:
            continue  # covered by the cookieless tests; nothing to authorize
        url = fill(path, values)
        for who in CALLERS:
            want = expected(access, who)
            visitor = await caller(services, users[who])
            async with visitor.client as http:
                response = await http.request(
                    method, url, headers={"X-CSRF-Token": visitor.csrf}, follow_redirects=False
                )
            outsider = access.kind in (Kind.SITE, Kind.ORGANIZATION) and who in ("other", "staff")
            got = verdict(response, parameters, outsider)
            ok = not got.startswith("server error") if want == "open" else got == want
            if not ok:
                mismatches.append(f"{method} {path} as {who}: want {want}, got {got}")
    assert mismatches == [], "\n".join(mismatches)
