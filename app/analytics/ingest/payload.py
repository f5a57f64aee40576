"""Parse and validate an `/api/event` body (Plausible's Events API plus our `ursa` object).

Long and short keys are both accepted (`name|n`, `url|u`, `domain|d`, `referrer|r`,
`props|p|meta|m`, `revenue|$`, `interactive|i`, `h`, `w`, and an engagement beacon's
`scroll_depth|sd` and `engagement_time|e`, as Plausible names them). Anything a client can get
wrong raises `InvalidEvent`, which names the field; the route turns it into a 400/413 JSON
answer.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import msgspec

from app.analytics.ingest import limits
from app.analytics.ingest.ids import parse_hex_id

ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "n"),
    "url": ("url", "u"),
    "domain": ("domain", "d"),
    "referrer": ("referrer", "r"),
    "props": ("props", "p", "meta", "m"),
    "revenue": ("revenue", "$"),
    "interactive": ("interactive", "i"),
    "hash": ("hash", "h"),
    "screen_width": ("screen_width", "w"),
    "scroll_depth": ("scroll_depth", "sd"),
    "engaged_ms": ("engagement_time", "e"),
}

TIMING_FIELDS = (
    "dns",
    "connect",
    "tls",
    "ttfb",
    "download",
    "dom_content_loaded",
    "page_load",
    "fcp",
    "lcp",
    "inp",
)
PERF_FIELDS = (*TIMING_FIELDS, "cls")


class InvalidEvent(ValueError):
    """The request body is not an acceptable event; `field` names what is wrong."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


class IncomingEvent(msgspec.Struct, kw_only=True):
    """A validated event, before any enrichment."""

    name: str
    url: str
    hostname: str
    pathname: str
    domains: list[str]
    referrer: str = ""
    props: dict[str, str] = msgspec.field(default_factory=dict)
    revenue_amount: str = ""
    revenue_currency: str = ""
    interactive: bool = True
    screen_width: int = 0
    event_id: int = 0
    perf: dict[str, float] = msgspec.field(default_factory=dict)
    scroll_depth: int = 0  # engagement beacons only: percent of the page's height, 0-100
    engaged_ms: int = 0  # engagement beacons only: foreground time, at most MAX_ENGAGED_MS


_decoder = msgspec.json.Decoder()


def parse_event(body: bytes) -> IncomingEvent:
    """Validate a raw body into an `IncomingEvent` or raise `InvalidEvent`."""
    if len(body) > limits.MAX_BODY_BYTES:
        raise InvalidEvent("body", f"must be at most {limits.MAX_BODY_BYTES} bytes", 413)
    data = _decode(body, "body", "is not valid JSON")
    if not isinstance(data, dict):
        raise InvalidEvent("body", "must be a JSON object")
    name = _name(_pick(data, "name"))
    url, hostname, pathname = _url(_pick(data, "url"), _flag(data, "hash"))
    ours = _ours(data.get("ursa"))
    event = IncomingEvent(
        name=name,
        url=url,
        hostname=hostname,
        pathname=pathname,
        domains=_domains(_pick(data, "domain")),
        referrer=_referrer(_pick(data, "referrer")),
        props=_props(_pick(data, "props")),
        interactive=_flag(data, "interactive", default=True),
        screen_width=_screen_width(_pick(data, "screen_width")),
        event_id=ours[0],
        perf=ours[1],
    )
    event.revenue_amount, event.revenue_currency = _revenue(_pick(data, "revenue"))
    if name == limits.ENGAGEMENT_EVENT:
        event.scroll_depth, event.engaged_ms = _engagement(data)
    if name == limits.PERFORMANCE_EVENT and not event.perf:
        raise InvalidEvent("ursa.perf", f"is required for {limits.PERFORMANCE_EVENT} events")
    return event


def _decode(raw: bytes | str, field: str, not_json: str) -> Any:
    """`raw` decoded as JSON, or `InvalidEvent` naming `field`: `not_json` and the parser's
    reason, bytes that are not UTF-8 inside a string, or nesting past the interpreter's
    recursion limit (the decoder recurses once per array or object level)."""
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(field, f"{not_json} ({exc})") from None
    except UnicodeDecodeError:
        raise InvalidEvent(field, "is not valid UTF-8") from None
    except RecursionError:
        raise InvalidEvent(field, "nests arrays or objects too deeply") from None


def _pick(data: dict[str, Any], field: str) -> Any:
    for key in ALIASES[field]:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _text(value: Any, field: str, max_chars: int, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise InvalidEvent(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(field, "must be a string")
    if len(value) > max_chars:
        raise InvalidEvent(field, f"must be at most {max_chars} characters")
    if required and not value.strip():
        raise InvalidEvent(field, "must not be empty")
    return value


def _name(value: Any) -> str:
    return _text(value, "name", limits.MAX_NAME_CHARS, required=True).strip()


def _url(value: Any, hash_mode: bool) -> tuple[str, str, str]:
    url = _text(value, "url", limits.MAX_URL_CHARS, required=True).strip()
    try:
        parts = urlsplit(url)
        hostname = parts.hostname or ""
    except ValueError:
        raise InvalidEvent("url", "is not a valid URL") from None
    if parts.scheme.lower() not in limits.ALLOWED_URL_SCHEMES:
        raise InvalidEvent("url", "must be an http(s) URL")
    if not hostname:
        raise InvalidEvent("url", "must have a hostname")
    pathname = parts.path or "/"
    if hash_mode and parts.fragment:
        pathname = f"{pathname}#{parts.fragment}"
    return url, hostname.lower().removeprefix("www."), pathname


def _domains(value: Any) -> list[str]:
    raw = _text(
        value, "domain", limits.MAX_DOMAIN_CHARS * limits.MAX_DOMAINS_PER_EVENT, required=True
    )
    domains = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not domains:
        raise InvalidEvent("domain", "must not be empty")
    if len(domains) > limits.MAX_DOMAINS_PER_EVENT:
        raise InvalidEvent("domain", f"lists at most {limits.MAX_DOMAINS_PER_EVENT} domains")
    if any(len(domain) > limits.MAX_DOMAIN_CHARS for domain in domains):
        raise InvalidEvent("domain", f"each must be at most {limits.MAX_DOMAIN_CHARS} characters")
    return list(dict.fromkeys(domains))


def _referrer(value: Any) -> str:
    referrer = _text(value, "referrer", limits.MAX_REFERRER_CHARS)
    if referrer and urlsplit(referrer).scheme.lower() in ("data", "javascript"):
        raise InvalidEvent("referrer", "must not be a data: or javascript: URL")
    return referrer


def _json_object(value: Any, field: str) -> dict[str, Any] | None:
    """Props and revenue may come as an object or as a JSON string holding one."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _decode(value, field, "must be an object or a JSON string of one")
    if not isinstance(value, dict):
        raise InvalidEvent(field, "must be an object")
    return value


def _props(value: Any) -> dict[str, str]:
    data = _json_object(value, "props")
    if not data:
        return {}
    if len(data) > limits.MAX_PROPS:
        raise InvalidEvent("props", f"must have at most {limits.MAX_PROPS} keys")
    props: dict[str, str] = {}
    for key, raw in data.items():
        if raw is None:
            continue
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (str, int, float)):
            text = str(raw)
        else:
            raise InvalidEvent(f"props.{key[:40]}", "must be a string, number or boolean")
        if not key or len(key.encode()) > limits.MAX_PROP_KEY_BYTES:
            raise InvalidEvent("props", f"keys must be 1 to {limits.MAX_PROP_KEY_BYTES} bytes")
        if len(text.encode()) > limits.MAX_PROP_VALUE_BYTES:
            raise InvalidEvent(
                f"props.{key[:40]}", f"must be at most {limits.MAX_PROP_VALUE_BYTES} bytes"
            )
        props[key] = text
    return props


def _revenue(value: Any) -> tuple[str, str]:
    data = _json_object(value, "revenue")
    if data is None:
        return "", ""
    currency = data.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise InvalidEvent("revenue.currency", "must be a three-letter ISO 4217 code")
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        raise InvalidEvent("revenue.amount", "must be a number")
    try:
        decimal = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidEvent("revenue.amount", "must be a number") from None
    # copy_abs and comparisons are exact; abs() would round under the default context and
    # trap (decimal.Overflow) on an exponent past its range, such as "1e1000000".
    if not decimal.is_finite() or decimal.copy_abs() > limits.MAX_REVENUE_AMOUNT:
        raise InvalidEvent("revenue.amount", "must be a finite number within range")
    return str(decimal.quantize(Decimal("0.001"))), currency.upper()


def _flag(data: dict[str, Any], field: str, *, default: bool = False) -> bool:
    value = _pick(data, field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidEvent(field, "must be a boolean")


def _screen_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent("screen_width", "must be an integer")
    if not 0 <= value <= limits.MAX_SCREEN_WIDTH:
        raise InvalidEvent("screen_width", f"must be between 0 and {limits.MAX_SCREEN_WIDTH}")
    return value


def _engagement(data: dict[str, Any]) -> tuple[int, int]:
    """An engagement beacon's scroll depth (a whole percent, 0-100) and engaged time (whole
    milliseconds, clamped to `MAX_ENGAGED_MS`: a tab left in front of someone who went away
    says nothing more after half an hour)."""
    depth = _whole(_pick(data, "scroll_depth"), "scroll_depth")
    if depth > 100:
        raise InvalidEvent("scroll_depth", "must be between 0 and 100")
    engaged = _whole(_pick(data, "engaged_ms"), "engagement_time")
    return depth, min(engaged, limits.MAX_ENGAGED_MS)


def _whole(value: Any, field: str) -> int:
    """A non-negative integer (0 when absent); floats with a fraction are refused."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(field, "must be a whole number")
    if value < 0:
        raise InvalidEvent(field, "must not be negative")
    return value


def _ours(value: Any) -> tuple[int, dict[str, float]]:
    """Our namespaced object: `{"id": "<16 hex>", "perf": {...timings}}`."""
    if value is None:
        return 0, {}
    if not isinstance(value, dict):
        raise InvalidEvent("ursa", "must be an object")
    event_id = 0
    if value.get("id") is not None:
        raw = value["id"]
        parsed = parse_hex_id(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise InvalidEvent("ursa.id", "must be 16 hexadecimal digits")
        event_id = parsed
    return event_id, _perf(value.get("perf"))


def _perf(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent("ursa.perf", "must be an object")
    perf: dict[str, float] = {}
    for key, raw in value.items():
        if key not in PERF_FIELDS:
            raise InvalidEvent(f"ursa.perf.{key[:40]}", "is not a known timing")
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise InvalidEvent(f"ursa.perf.{key}", "must be a number")
        ceiling = limits.MAX_CLS if key == "cls" else limits.MAX_TIMING_MS
        if not 0 <= raw <= ceiling:
            raise InvalidEvent(f"ursa.perf.{key}", f"must be between 0 and {ceiling}")
        perf[key] = float(raw)
    return perf
