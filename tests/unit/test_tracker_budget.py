"""The browser tracker stays small (as served: minified) and never touches browser storage or
cookies (in its source)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from app.routes.tracker import minified_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "app" / "static" / "js" / "script.js"
MAX_GZIPPED_BYTES = 2000


@pytest.fixture(scope="module")
def source() -> bytes:
    return SCRIPT.read_bytes()


def test_gzipped_size_within_budget() -> None:
    size = len(gzip.compress(minified_script(), compresslevel=9))
    assert size <= MAX_GZIPPED_BYTES, f"script.js is {size} bytes gzipped, as served"


def test_served_script_is_the_source_without_comments(source: bytes) -> None:
    served = minified_script().decode()
    assert len(served) < len(source)
    assert "//" not in served.replace("://", "")  # no comment left (URLs aside)
    assert "/*" not in served
    for name in ("engagement", "File Download", "Outbound Link: Click", "ursa:performance"):
        assert name in served


@pytest.mark.parametrize("name", ["localStorage", "sessionStorage", "randomUUID"])
def test_no_forbidden_identifier(source: bytes, name: str) -> None:
    assert not re.search(rf"\b{name}\b", source.decode()), f"script.js must not use {name}"


def test_no_cookies(source: bytes) -> None:
    # `document` is aliased inside the IIFE, so catch any `.cookie` access.
    assert not re.search(r"\.\s*cookie\b", source.decode()), "script.js must not use cookies"
