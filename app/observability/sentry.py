"""Error reports to Sentry when `SENTRY_DSN` is set, without personal data or secrets.

Sentry collects little (`DATA_COLLECTION`), and every event and transaction passes through
`scrub` before it leaves the process.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from app.observability.redaction import redact
from app.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk._types import DataCollectionUserOptions, Event

DROPPED_HEADERS = frozenset(
    ("cookie", "authorization", "stripe-signature", "x-forwarded-for", "x-real-ip", "forwarded")
)
DROPPED_REQUEST_KEYS = ("cookies", "data", "env")
EMAIL_MASK = "[email]"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

# sentry-sdk's structured successor of `send_default_pii=False` (2.75 deprecates the flag), set
# stricter: no user, cookies, request bodies, query strings, frame local variables (they hold
# addresses, emails and form fields), database or queue payloads, and only a few harmless
# request headers.
DATA_COLLECTION: DataCollectionUserOptions = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {
        "request": {"mode": "allowlist", "terms": ["accept", "content-type", "hx-", "host"]}
    },
    "http_bodies": [],
    "url_query_params": {"mode": "off"},
    "database_query_data": False,
    "queues": False,
    "stack_frame_variables": False,
}
REQUEST_LOGGER = "app.requests"  # the per-request log line of `app.observability.requests`
UNHANDLED_LOGGER = "app.main"  # the traceback of a 500, which Sentry gets as its exception


def setup_sentry(settings: Settings) -> bool:
    """Start the Sentry SDK if `SENTRY_DSN` is set; True when it was started."""
    dsn = settings.SENTRY_DSN.get_secret_value()
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.integrations.litestar import LitestarIntegration
    from sentry_sdk.integrations.logging import ignore_logger
    from sentry_sdk.integrations.redis import RedisIntegration
    from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=settings.RELEASE,
        data_collection=DATA_COLLECTION,
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        integrations=[
            LitestarIntegration(),
            RedisIntegration(),
            SqlalchemyIntegration(),
            DramatiqIntegration(),
        ],
        before_send=scrub,
        before_send_transaction=scrub,
    )
    # A failed request is reported once, by its exception: neither its 5xx log line nor its
    # logged traceback is another event (a 503 storm while Redis is down would otherwise be one
    # event per request, twice).
    ignore_logger(REQUEST_LOGGER)
    ignore_logger(UNHANDLED_LOGGER)
    return True


def scrub(event: Event, hint: dict[str, Any] | None = None) -> Event:
    """`event` without secret headers, cookies, bodies or user; tokens and emails masked.

    The `DROPPED_HEADERS` are dropped (not just masked), as are cookies, bodies, the user and the
    server environment, and every string left (URL, message, exception, breadcrumb, transaction
    name) has tokens in URLs redacted and email addresses masked."""
    request: Any = event.get("request")
    if isinstance(request, dict):
        for key in DROPPED_REQUEST_KEYS:
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in DROPPED_HEADERS
            }
    event.pop("user", None)
    return cast("Event", _scrub_strings(event))


def _scrub_strings(value: Any) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub(EMAIL_MASK, redact(value))
    if isinstance(value, dict):
        return {key: _scrub_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_strings(item) for item in value]
    return value
