"""Security headers on every HTML response, added in one place: a `before_send` hook.

The headers and why pages need nothing inline: docs/security.md ("Security headers"). A route
that must differ (shared dashboards may be framed by their own site) sets its own
`Content-Security-Policy` with `content_security_policy(frame_ancestors)`; the hook then leaves
that header alone and adds the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from litestar.datastructures import CacheControlHeader
from litestar.types import HTTPResponseStartEvent, Message, Scope

from app.analytics.ingest.client_ip import Network, is_trusted

_CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # data: for the inline SVG favicon in base.html
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
)


def content_security_policy(
    frame_ancestors: Sequence[str] = ("'none'",), form_targets: Sequence[str] = ()
) -> str:
    """The page policy; `frame_ancestors` are the sources allowed to frame the page, and
    `form_targets` the origins besides 'self' its forms may lead to (browsers apply
    `form-action` to the redirect that answers a form too: the billing page's forms are
    answered by a redirect to Stripe's hosted pages)."""
    form_action = " ".join(("'self'", *form_targets))
    return "; ".join(
        (
            *_CSP_DIRECTIVES,
            f"form-action {form_action}",
            f"frame-ancestors {' '.join(frame_ancestors)}",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()
# `same-origin` rather than `strict-origin-when-cross-origin`: a link followed from a dashboard
# (a referrer, a page of the tracked site) tells the destination nothing, not even that its
# visitor came from an analytics installation.
REFERRER_POLICY = "same-origin"
HSTS = "max-age=31536000; includeSubDomains"
# Given by the logged-in router (`app.main`), so that neither the browser nor a proxy keeps a copy
# of a private page; the app's error handlers give the same to the errors of those routes.
AUTHENTICATED_CACHE_CONTROL = CacheControlHeader(no_store=True)

_CSP_HEADER = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
_HTML_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", REFERRER_POLICY.encode()),
)
_HSTS_HEADER = (b"strict-transport-security", HSTS.encode())

BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def security_headers(trusted: Sequence[Network]) -> BeforeSend:
    """The `before_send` hook; `X-Forwarded-Proto` counts only from a peer in `trusted`."""

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or not _is_html(message):
            return
        # A new list, never an in-place change: a response may share its list with others.
        headers = [*message.get("headers", ()), *_HTML_HEADERS]
        if not _has_policy(headers):
            headers.append(_CSP_HEADER)
        if _is_https(scope, trusted):
            headers.append(_HSTS_HEADER)
        message["headers"] = headers

    return add_headers


def _is_html(message: HTTPResponseStartEvent) -> bool:
    """Whether the response is text/html (headers are a list or tuple, never a generator): the
    hook looks only at a response's start message, so the tracker, static files and `/api/event`
    (CORS-open, credential-free, cacheable by a CDN) pass through untouched."""
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return value.startswith(b"text/html")
    return False


def _has_policy(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the route set its own policy (e.g. shared dashboards, framed by their site)."""
    return any(name.lower() == b"content-security-policy" for name, _ in headers)


def _is_https(scope: Scope, trusted: Sequence[Network]) -> bool:
    """Whether the browser reached us over https: the transport's scheme, or the last
    `X-Forwarded-Proto` entry over every line of it (the one the nearest proxy wrote, whether
    it appended to the client's line or added its own) if that proxy is trusted."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not trusted or not client or not is_trusted(client[0], trusted):
        return False
    last = b""
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            last = value
    return last.rsplit(b",", 1)[-1].strip().lower() == b"https"
