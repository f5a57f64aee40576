"""Visitor hashes, event ids, bot patterns and UA classes."""

from __future__ import annotations

import pytest

from app.analytics.buffer.useragent import device_class, parse_user_agent
from app.analytics.ingest.bots import is_bot
from app.analytics.ingest.ids import id_millis, make_id, parse_hex_id
from app.analytics.ingest.visitor import visitor_hash

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def test_visitor_hash_depends_on_salt_site_ip_and_agent():
    today, tomorrow = b"k" * 32, b"j" * 32
    base = visitor_hash(today, 1, "203.0.113.1", UA)
    assert base == visitor_hash(today, 1, "203.0.113.1", UA)
    assert base != visitor_hash(tomorrow, 1, "203.0.113.1", UA)  # daily rotation
    assert base != visitor_hash(today, 2, "203.0.113.1", UA)  # not linkable across sites
    assert base != visitor_hash(today, 1, "203.0.113.2", UA)
    assert base != visitor_hash(today, 1, "203.0.113.1", UA + " x")
    assert 0 < base < 2**63


def test_ids_are_time_ordered_and_round_trip():
    earlier, later = make_id(1_700_000_000_000), make_id(1_700_000_000_001)
    assert earlier < later
    assert id_millis(later) == 1_700_000_000_001
    assert make_id(5, 9) == (5 << 20) | 9
    assert parse_hex_id(f"{later:016x}") == later
    assert parse_hex_id("xyz") is None
    assert parse_hex_id("0" * 16) is None
    assert parse_hex_id("g" * 16) is None


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (UA, False),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            False,
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0 Safari/537.36",
            True,
        ),
        ("curl/8.5.0", True),
        ("python-requests/2.32", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)", True),
        (
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36 Chrome-Lighthouse",
            True,
        ),
        ("", True),
        ("x", True),
    ],
)
def test_bot_filter(agent, bot):
    assert is_bot(agent) is bot


def test_user_agent_classes():
    desktop = parse_user_agent(UA)
    assert (desktop.browser, desktop.browser_version, desktop.os, desktop.device) == (
        "Chrome",
        "131",
        "Windows",
        "Desktop",
    )
    phone = parse_user_agent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
    )
    assert (phone.browser, phone.os, phone.device) == ("Mobile Safari", "iOS", "Mobile")
    tablet = parse_user_agent(
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1"
    )
    assert tablet.device == "Tablet"
    assert device_class(desktop, 390) == "Mobile"
    assert device_class(desktop, 800) == "Tablet"
    assert device_class(phone, 1440) == "Desktop"
    assert device_class(phone, 0) == "Mobile"
