"""Email addresses: the one normal form accounts, invitations and rate limits compare."""

from __future__ import annotations

import re

from app.addresses.hostnames import is_hostname
from app.errors import InvalidInput

# RFC 5322 dot-atoms without quoted strings or comments: what real mailboxes use.
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def normalize_email(raw: str) -> str:
    """Trimmed, lowercase, domain as punycode; raise `InvalidInput` if it is no address."""
    local, at, domain = raw.strip().lower().rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    email = f"{local}@{domain}"
    valid_local = bool(at) and len(local) <= 64 and _LOCAL_PART.fullmatch(local) is not None
    if not valid_local or len(email) > 254 or not is_hostname(domain):
        raise InvalidInput(f"{raw!r} is not a valid email address (example: jo@example.com)")
    return email
