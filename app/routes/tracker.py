"""`/js/script.js`: the tracker, CORS-open, short-lived in caches so fixes reach sites."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import Response, get

SCRIPT = Path(__file__).resolve().parents[1] / "static" / "js" / "script.js"
SCRIPT_MAX_AGE_SECONDS = 3600
HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": f"public, max-age={SCRIPT_MAX_AGE_SECONDS}",
}


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@get("/js/script.js", name="tracker", include_in_schema=False)
async def tracker_script() -> Response[bytes]:
    return Response(_script(), media_type="application/javascript; charset=utf-8", headers=HEADERS)
