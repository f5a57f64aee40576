"""`/js/script.js`: the tracker, CORS-open, short-lived in caches so fixes reach sites.

`app/static/js/script.js` is the readable source; the route serves it minified (comments and
whitespace removed by rjsmin, once per process), which is what the byte budget counts
(`tests/unit/test_tracker_budget.py`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import rjsmin  # type: ignore[import-untyped]
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
def minified_script() -> bytes:
    """The tracker as served: the source without its comments and spare whitespace."""
    script: str = rjsmin.jsmin(SCRIPT.read_text(encoding="utf-8"))
    return script.encode()


@get("/js/script.js", name="tracker", include_in_schema=False)
async def tracker_script() -> Response[bytes]:
    return Response(
        minified_script(), media_type="application/javascript; charset=utf-8", headers=HEADERS
    )
