"""The web's readiness passes unless the buffer's Redis is down (`app.web.readiness`)."""

from __future__ import annotations

import pytest

from app.web.readiness import readiness

FAILED = "failed: ConnectionError"


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ({"redis": "ok", "database": "ok", "clickhouse": "ok"}, ("ok", True)),
        ({"redis": "ok", "database": "ok", "clickhouse": FAILED}, ("degraded", True)),
        ({"redis": "ok", "database": FAILED, "clickhouse": FAILED}, ("degraded", True)),
        ({"redis": FAILED, "database": "ok", "clickhouse": "ok"}, ("unavailable", False)),
        ({"redis": FAILED, "database": FAILED, "clickhouse": FAILED}, ("unavailable", False)),
    ],
)
def test_readiness_follows_what_ingest_needs(checks, expected):
    assert readiness(checks) == expected
