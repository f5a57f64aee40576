"""Secrets that travel in URLs (verification, reset, invitation, cancellation and share links)
never reach logs: every log line passes through `redact` on its way out
(`app.observability.logging`).

`TOKEN_PATH_PREFIXES` lists every route whose next path segment is a secret; a route added with
a token in its path belongs here (a test checks the list against the app's route table).
"""

from __future__ import annotations

import re

TOKEN_PATH_PREFIXES = (
    "/verify-email/",
    "/password/reset/",
    "/invitations/",
    "/share/",
    "/account/delete/cancel/",
)
REDACTED = "[redacted]"
_TOKEN = re.compile(
    "(" + "|".join(re.escape(prefix) for prefix in TOKEN_PATH_PREFIXES) + r")[^/\s?#\"'<>]+"
)


def redact(text: str) -> str:
    """`text` with the token segment of every token-bearing path replaced by `[redacted]`."""
    return _TOKEN.sub(rf"\g<1>{REDACTED}", text)
