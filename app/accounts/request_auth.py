"""Who is asking: the login session of a request, CSRF, and the guards.

`WebAuthMiddleware` loads a request's login session and checks its CSRF token; the guards are
`login_required`, `current_user` (a dependency) and `RateLimits` (the rules a route declares in
`app.cache.ratelimit`). Roles are checked in `app.organizations.access`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts import api_keys
from app.accounts.web_sessions import Stage, WebSession
from app.analytics.buffer.useragent import parse_user_agent
from app.analytics.ingest.client_ip import request_client_ip
from app.cache.ratelimit import Scope as LimitScope
from app.cache.ratelimit import declared
from app.errors import Unauthorized
from app.models import ApiKey, User
from app.services import Services
from app.settings import Settings

# Never a session lookup, never a cookie: a CDN may cache these, and the tracker must not track.
# Exact paths and folder prefixes: `/api/events` or `/healthz-x`, were they ever routes, are not.
COOKIELESS_PATHS = frozenset({"/api/event", "/billing/webhook", "/healthz", "/readyz"})
# The Stats API authenticates by bearer key, never by cookie: no session, no CSRF token.
API_PREFIXES = ("/api/v1/", "/api/v2/")
COOKIELESS_PREFIXES = ("/js/", "/static/", *API_PREFIXES)
# Read-only dashboards without an account: no cookie is ever set on them (a CDN may cache them).
SHARED_VIEW_PREFIXES = ("/share/", "/public/")
# The only unsafe requests accepted without a CSRF token: machine-to-machine endpoints that
# carry no cookies (ingestion) or authenticate by signature (Stripe's webhook).
CSRF_EXEMPT_PATHS = ("/api/event", "/billing/webhook")
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY = "ursa_auth"
API_KEY_STATE = "ursa_api_key"


@dataclass(frozen=True)
class CookieNames:
    session: str
    csrf: str
    secure: bool

    @classmethod
    def of(cls, settings: Settings) -> CookieNames:
        # Browsers refuse a `__Host-` cookie without `Secure`, so the prefix goes with it.
        prefix = "__Host-" if settings.SESSION_COOKIE_SECURE else ""
        return cls(f"{prefix}ursa_session", f"{prefix}ursa_csrf", settings.SESSION_COOKIE_SECURE)

    def share_access(self, slug: str) -> str:
        """The cookie holding a shared link's access token, one per link. `__Host-` demands
        `Path=/`, and this cookie lives under the link's path: it can only be `__Secure-`."""
        prefix = "__Secure-" if self.secure else ""
        return f"{prefix}ursa_share_{slug}"


@dataclass(frozen=True)
class ShareAccess:
    """A shared link's access token, for the browser to keep under `path` for `max_age` s."""

    slug: str
    path: str
    token: str
    max_age: int


@dataclass
class RequestAuth:
    """The login state of one request, and the cookie changes its response will carry."""

    session: WebSession | None
    csrf_cookie: str | None
    new_session_token: str | None = None
    clear_session: bool = False
    new_csrf_cookie: str | None = None
    new_share_access: ShareAccess | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> int | None:
        if self.session is None or not self.session.authenticated:
            return None
        return self.session.user_id


def request_auth(connection: ASGIConnection[Any, Any, Any, Any]) -> RequestAuth:
    auth = connection.scope["state"].get(STATE_KEY)
    if not isinstance(auth, RequestAuth):  # a cookieless route asked: a bug, not a user error
        raise RuntimeError(f"{connection.scope['path']} is cookieless and has no login state")
    return auth


def csrf_token_for(auth: RequestAuth, secret: str) -> str:
    """The token forms and htmx must send back; mints the CSRF cookie when there is no seed."""
    if auth.session is not None:
        seed = auth.session.csrf_seed
    else:
        seed = auth.csrf_cookie or _new_anonymous_seed(auth)
    return _sign(secret, seed)


def _new_anonymous_seed(auth: RequestAuth) -> str:
    """A new CSRF cookie (the seed of the tokens of logged-out pages), sent with the response."""
    auth.csrf_cookie = auth.new_csrf_cookie = secrets.token_urlsafe(24)
    return auth.csrf_cookie


def _sign(secret: str, seed: str) -> str:
    """A CSRF token: an HMAC of `seed` under `SECRET_KEY`.

    The seed is the login session's once there is one (half way through 2FA too; it changes
    whenever the session id does), the CSRF cookie's before. htmx sends the token from
    `<body hx-headers>` in `CSRF_HEADER`, plain forms in a `CSRF_FIELD` field.
    """
    return hmac.new(secret.encode(), f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def _csrf_valid(auth: RequestAuth, secret: str, sent: str) -> bool:
    """A token of the login session's seed once there is one; of the CSRF cookie before."""
    seed = auth.session.csrf_seed if auth.session is not None else auth.csrf_cookie
    if not sent or not seed:
        return False
    return hmac.compare_digest(_sign(secret, seed), sent)


class WebAuthMiddleware(ASGIMiddleware):
    """Load the login session named by the session cookie into `RequestAuth` (one Redis read),
    reject a state-changing request without a valid CSRF token (403), and write the cookies a
    handler asked for when the response starts.

    So cookies are written in one place, and only when something is stored: a login, a logout,
    a page that rendered a form for someone not logged in (the CSRF cookie), or a shared link's
    password typed in (`grant_share_access`: the access token, in a cookie scoped to the link's
    path). Every route passes through it except the cookieless ones (`COOKIELESS_PATHS`,
    `COOKIELESS_PREFIXES`).
    """

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "cookieless"  # a route handler with `opt={"cookieless": True}` skips it too

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        path = str(scope["path"])
        return path in COOKIELESS_PATHS or path.startswith(COOKIELESS_PREFIXES)

    def __init__(self, services: Services) -> None:
        self._services = services
        self._cookies = CookieNames.of(services.settings)
        self._secret = services.settings.SECRET_KEY

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive)
        token = request.cookies.get(self._cookies.session)
        session = await self._services.web_sessions.load(token) if token else None
        auth = RequestAuth(session=session, csrf_cookie=request.cookies.get(self._cookies.csrf))
        # An expired or revoked cookie is cleared, except on shared dashboards (never a cookie).
        auth.clear_session = (
            bool(token) and session is None and not scope["path"].startswith(SHARED_VIEW_PREFIXES)
        )
        scope["state"][STATE_KEY] = auth
        if request.method not in SAFE_METHODS and scope["path"] not in CSRF_EXEMPT_PATHS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent and request.content_type[0] in _FORM_TYPES:
                sent = str((await request.form()).get(CSRF_FIELD, ""))
            if not _csrf_valid(auth, self._secret, sent):
                raise PermissionDeniedException(
                    "This form has expired or did not come from Ursa. Reload the page and try "
                    "again."
                )

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies = self._cookie_headers(auth)
                if cookies:
                    message["headers"] = [*message.get("headers", ()), *cookies]
            await send(message)

        await next_app(scope, receive, send_with_cookies)

    def _cookie_headers(self, auth: RequestAuth) -> list[tuple[bytes, bytes]]:
        names, services = self._cookies, self._services
        cookies = []
        if auth.new_session_token is not None:
            max_age = services.web_sessions.absolute_seconds
            cookies.append(self._cookie(names.session, auth.new_session_token, max_age))
        elif auth.clear_session:
            cookies.append(self._cookie(names.session, "", 0))
        if auth.new_csrf_cookie is not None:
            cookies.append(self._cookie(names.csrf, auth.new_csrf_cookie, None))
        grant = auth.new_share_access
        if grant is not None:
            name = names.share_access(grant.slug)
            cookies.append(self._cookie(name, grant.token, grant.max_age, grant.path))
        return [(b"set-cookie", cookie.to_header(header="").encode()) for cookie in cookies]

    def _cookie(self, name: str, value: str, max_age: int | None, path: str = "/") -> Cookie:
        return Cookie(
            key=name,
            value=value,
            max_age=max_age,
            path=path,
            secure=self._cookies.secure,
            httponly=True,
            samesite="lax",
        )


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def start_session(
    request: Request[Any, Any, Any], services: Services, user: User, stage: Stage
) -> WebSession:
    """Log `user` in (or half in, until the second factor): a new session under a new id.

    Any session the browser had is ended first, so an id fixed before login is worthless.
    """
    auth = request_auth(request)
    if auth.session is not None:
        await services.web_sessions.destroy(auth.session)
    assert user.id is not None
    token, session = await services.web_sessions.create(
        user.id, stage, **describe_client(request, services)
    )
    auth.session, auth.new_session_token, auth.clear_session = session, token, False
    _new_anonymous_seed(auth)
    return session


async def rotate_session(
    request: Request[Any, Any, Any], services: Services, stage: Stage | None = None
) -> WebSession:
    """The current session under a new id: after the second factor or a privilege change."""
    auth = request_auth(request)
    assert auth.session is not None
    token, session = await services.web_sessions.rotate(auth.session, stage)
    auth.session, auth.new_session_token = session, token
    return session


async def end_session(request: Request[Any, Any, Any], services: Services) -> None:
    auth = request_auth(request)
    if auth.session is not None:
        await services.web_sessions.destroy(auth.session)
    auth.session, auth.new_session_token, auth.clear_session = None, None, True
    _new_anonymous_seed(auth)


def share_access_token(request: Request[Any, Any, Any], settings: Settings, slug: str) -> str:
    """The access token this browser keeps for shared link `slug` ("" when it has none)."""
    return request.cookies.get(CookieNames.of(settings).share_access(slug), "")


def grant_share_access(request: Request[Any, Any, Any], grant: ShareAccess) -> None:
    """Have the response set the cookie that keeps `grant` (never the URL: it gets copied)."""
    request_auth(request).new_share_access = grant


def describe_client(request: Request[Any, Any, Any], services: Services) -> dict[str, str]:
    """Country and "Browser on OS" of the client, for the sessions page and login emails."""
    trusted = services.settings.trusted_networks
    ip = request_client_ip(request.scope.get("client"), request.scope["headers"], trusted)
    software = parse_user_agent(request.headers.get("user-agent", ""))
    agent = f"{software.browser or 'Unknown browser'} on {software.os or 'unknown OS'}"
    return {"country": services.locator.locate(ip).country_code if ip else "", "agent": agent}


# --- authorization ---------------------------------------------------------------------------


class LoginRequired(Exception):
    """Raised by guards; answered with a redirect to the login page (`HX-Redirect` for htmx)."""

    def __init__(self, next_url: str) -> None:
        super().__init__("login required")
        self.next_url = next_url


def login_url(next_url: str) -> str:
    return f"/login?next={quote(next_url, safe='/')}"


def safe_next(raw: str | None) -> str:
    """A post-login destination on this site only: a local path, never `//host` or a URL."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return "/"
    return raw


async def login_required(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: a full (not half way through 2FA) login session."""
    if request_auth(connection).user_id is None:
        path = connection.scope["path"]
        query = connection.scope.get("query_string", b"").decode()
        raise LoginRequired(f"{path}?{query}" if query else path)


class RateLimits:
    """Guard: count the request under the rules its handler declares (before its body is
    parsed); 429 past one.

    On the logged-in router it comes after `login_required`, so a per-user rule has a user.
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    def __deepcopy__(self, memo: dict[int, object]) -> RateLimits:
        return self  # Litestar copies routers on registration; the services are shared

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        rules = declared(handler.opt)
        if rules:
            per_user = any(rule.scope is LimitScope.USER for rule in rules)
            user_id = request_auth(connection).user_id if per_user else None
            key = connection.scope["state"].get(API_KEY_STATE)
            key_id = key.key.id if isinstance(key, ApiCaller) else None
            await self._services.limiter.enforce_declared(rules, connection, user_id, key_id)


@dataclass(frozen=True)
class ApiCaller:
    """Who a Stats API request comes from: a live key and its user."""

    key: ApiKey
    user: User


class ApiKeyRequired:
    """Guard of the Stats API: `Authorization: Bearer <key>` naming a live key of a live user,
    else 401. It runs before `RateLimits`, which counts per key."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def __deepcopy__(self, memo: dict[int, object]) -> ApiKeyRequired:
        return self

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("send your API key as Authorization: Bearer <key>")
        found = await api_keys.authenticate(self._services.sessions, secret.strip())
        if found is None:
            raise Unauthorized("this API key is unknown or revoked")
        connection.scope["state"][API_KEY_STATE] = ApiCaller(*found)


def api_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiCaller:
    """The caller `ApiKeyRequired` let through (a route behind it only)."""
    caller = connection.scope["state"].get(API_KEY_STATE)
    if not isinstance(caller, ApiCaller):
        raise RuntimeError(f"{connection.scope['path']} is not behind ApiKeyRequired")
    return caller


async def current_user(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> User:
    """Dependency: the logged-in user (routes using it also carry the `login_required` guard)."""
    auth = request_auth(request)
    user_id = auth.user_id
    user = None
    if user_id is not None:
        async with services.sessions() as session:
            user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        await end_session(request, services)
        raise LoginRequired(request.scope["path"])
    return user
