"""The per-minute counter behind the ingest abuse caps."""

from __future__ import annotations

from app.analytics.ingest.caps import MinuteCounter


def test_counts_per_key_and_starts_over_each_minute():
    now = [0.0]
    counter = MinuteCounter(2, clock=lambda: now[0])
    assert [counter.allow("a") for _ in range(3)] == [True, True, False]
    assert counter.allow("b")
    now[0] = 59.9
    assert not counter.allow("a")
    now[0] = 60.0
    assert counter.allow("a")


def test_zero_turns_the_cap_off():
    counter = MinuteCounter(0)
    assert all(counter.allow("a") for _ in range(10_000))
