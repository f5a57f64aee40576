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
from dataclasses import dataclass

import httpx
import pytest
from litestar.routes import HTTPRoute
from sqlmodel import select

from app.auth import ROLE_RANK, CookieNames, RequestAuth, csrf_token_for
from app.main import create_app
from app.models import Membership, Role, Site, User
from app.redaction import TOKEN_PATH_PREFIXES
from app.services import Services
from app.websessions import Stage
from tests.conftest import join, make_client, new_user, random_peer

pytestmark = pytest.mark.db


class Kind(enum.Enum):
    PUBLIC = "no login needed"
    COOKIELESS = "no login, no session, no cookie (tracker, ingest, static, health)"
    ACCOUNT = "any logged-in user; acts on their own account"
    SITE = "a member of the site's organization with at least `role`"
    ORGANIZATION = "a member of the organization with at least `role`"


@dataclass(frozen=True)
class Access:
    kind: Kind
    role: Role = Role.VIEWER


PUBLIC = Access(Kind.PUBLIC)
COOKIELESS = Access(Kind.COOKIELESS)
ACCOUNT = Access(Kind.ACCOUNT)
ROLES_UP = (Role.VIEWER, Role.ADMIN, Role.OWNER)
SITE_VIEWER, SITE_ADMIN, SITE_OWNER = (Access(Kind.SITE, role) for role in ROLES_UP)
ORG_VIEWER, ORG_ADMIN, ORG_OWNER = (Access(Kind.ORGANIZATION, role) for role in ROLES_UP)

ACCESS: dict[tuple[str, str], Access] = {
    ("POST", "/api/event"): COOKIELESS,
    ("GET", "/healthz"): COOKIELESS,
    ("GET", "/readyz"): COOKIELESS,
    ("GET", "/js/script.js"): COOKIELESS,
    ("GET", "/static/{file_path:path}"): COOKIELESS,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/"): ACCOUNT,
    ("GET", "/{domain:str}"): SITE_VIEWER,
    ("GET", "/{domain:str}/cards/{card:str}"): SITE_VIEWER,
}

CALLERS = ("anonymous", "other", "staff", "viewer", "admin", "owner")
CALLER_ROLE = {"viewer": Role.VIEWER, "admin": Role.ADMIN, "owner": Role.OWNER}
# Path parameters naming things the matrix does not create: a 404 there is not a refusal.
SUB_OBJECTS = {"user_id", "inv_id", "link_id", "public_id", "token", "slug"}


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


def expected(access: Access, who: str, method: str) -> str:
    if access.kind in (Kind.PUBLIC, Kind.COOKIELESS):
        return "open"
    if who == "anonymous":
        return "login"
    if access.kind is Kind.ACCOUNT:
        return "allowed"
    if who in ("other", "staff"):
        return "hidden"
    return "allowed" if ROLE_RANK[CALLER_ROLE[who]] >= ROLE_RANK[access.role] else "forbidden"


def verdict(response: httpx.Response, method: str, parameters: set[str]) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    if status >= 500:
        return f"server error {status}"
    if (status in (302, 303) and location.startswith("/login")) or status == 401:
        return "login"
    if status == 403:
        return "forbidden"
    if status == 404 and not parameters & SUB_OBJECTS:
        return "hidden"
    return "allowed"


async def test_the_authorization_matrix(services, owner, site_domain):
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
        assert (
            await session.exec(
                select(Membership).where(
                    Membership.user_id == other_id,
                    Membership.organization_id == site.organization_id,
                )
            )
        ).first() is None
    values = {
        "domain": site_domain,
        "card": "overview",
        "org_id": str(site.organization_id),
        "user_id": str(other_id),
        "inv_id": "999999",
        "link_id": "999999",
        "public_id": "0" * 16,
        "token": "no-such-token",
        "slug": "no-such-slug",
        "file_path": "css/app.css",
    }

    mismatches = []
    for method, path, parameters in app_routes(services):
        access = ACCESS[(method, path)]
        if access.kind is Kind.COOKIELESS:
            continue  # covered by the cookieless tests; nothing to authorize
        url = fill(path, values)
        for who in CALLERS:
            want = expected(access, who, method)
            visitor = await caller(services, users[who])
            async with visitor.client as http:
                response = await http.request(
                    method, url, headers={"X-CSRF-Token": visitor.csrf}, follow_redirects=False
                )
            got = verdict(response, method, parameters)
            if want == "open":
                ok = got not in ("login",) and not got.startswith("server error")
            else:
                ok = got == want
            if not ok:
                mismatches.append(f"{method} {path} as {who}: want {want}, got {got}")
    assert mismatches == []
