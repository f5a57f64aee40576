"""TOTP steps, recovery codes and the otpauth enrolment, without a database."""

from __future__ import annotations

import base64
import math
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp

from app.accounts.two_factor import (
    ISSUER,
    RECOVERY_ALPHABET,
    enrollment,
    hash_recovery_code,
    matching_step,
    new_recovery_code,
    normalize_recovery_code,
)
from app.accounts.web_sessions import Stage, WebSession
from app.accounts.web_sessions_page import ago, session_rows

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits, as pyotp.random_base32()
NOW = 1_790_000_015.0  # 15 s into a 30-second step


def test_codes_of_the_previous_current_and_next_step_match_their_step():
    totp = pyotp.TOTP(SECRET)
    step = totp.timecode(NOW)
    for offset in (-1, 0, 1):
        code = totp.at(NOW + 30 * offset)
        assert matching_step(SECRET, code, NOW) == step + offset
    assert matching_step(SECRET, f" {totp.at(NOW)[:3]} {totp.at(NOW)[3:]} ", NOW) == step


def test_codes_outside_the_window_and_non_codes_match_nothing():
    totp = pyotp.TOTP(SECRET)
    current = {totp.at(NOW + 30 * offset) for offset in (-1, 0, 1)}
    stale = totp.at(NOW - 90)
    assert stale not in current
    assert matching_step(SECRET, stale, NOW) is None
    for junk in ("", "12345", "1234567", "abcdef", "12345x"):
        assert matching_step(SECRET, junk, NOW) is None


def test_recovery_codes_are_random_readable_and_carry_50_bits():
    codes = {new_recovery_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        first, dash, second = code.partition("-")
        assert dash
        assert len(first) == len(second) == 5
        assert set(first + second) <= set(RECOVERY_ALPHABET)
    assert not set("ilou") & set(RECOVERY_ALPHABET)
    assert 10 * math.log2(len(set(RECOVERY_ALPHABET))) >= 50


def test_recovery_codes_are_normalised_before_hashing():
    code = "7k2mq-x9d41"
    for typed in ("7K2MQ-X9D41", "7k2mq x9d41", " 7k2mqx9d41 ", "7k2mq-x9d4l", "7k2mq-x9d4I"):
        assert hash_recovery_code(typed) == hash_recovery_code(code), typed
    assert normalize_recovery_code("0o0o0-11111") == "0000011111"
    assert normalize_recovery_code("too-short") == ""
    assert len(hash_recovery_code(code)) == 64
    assert hash_recovery_code(code) != hash_recovery_code("7k2mq-x9d42")


def test_enrollment_names_the_issuer_and_the_account_and_draws_the_qr_code():
    shown = enrollment(SECRET, "jo@example.com")
    parts = urlsplit(shown.uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == f"/{ISSUER}:jo@example.com"
    assert parse_qs(parts.query) == {"secret": [SECRET], "issuer": [ISSUER]}
    prefix = "data:image/svg+xml;base64,"
    assert shown.qr_data_uri.startswith(prefix)
    svg = base64.b64decode(shown.qr_data_uri.removeprefix(prefix))
    assert svg.startswith(b"<svg")
    assert b"style" not in svg
    assert shown.grouped_secret == "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"


def test_ago_says_how_long_ago_in_words():
    assert ago(100.0, 130.0) == "just now"
    assert ago(100.0, 160.0) == "1 minute ago"
    assert ago(0.0, 7200.0) == "2 hours ago"
    assert ago(0.0, 3 * 86400.0 + 5) == "3 days ago"
    assert ago(200.0, 100.0) == "just now"  # a clock a little behind is not "in the future"


def _session(key: str, last_seen: float, agent: str = "") -> WebSession:
    return WebSession(key, 1, Stage.FULL, "seed", 1000.0, last_seen, "", agent)


def test_session_rows_put_this_device_first_then_the_most_recent():
    old, current, recent = (
        _session("a" * 64, 2000.0),
        _session("b" * 64, 1500.0),
        _session("c" * 64, 3000.0, "Firefox on Linux"),
    )
    rows = session_rows([old, current, recent], current, now=4000.0)
    assert [row.public_id for row in rows] == ["b" * 16, "c" * 16, "a" * 16]
    assert [row.current for row in rows] == [True, False, False]
    assert rows[0].agent == "Unknown browser"
    assert rows[0].country == "Unknown"
    assert rows[1].agent == "Firefox on Linux"
    assert rows[1].last_active.ago == "16 minutes ago"
    assert rows[1].last_active.iso == "1970-01-01T00:50Z"
