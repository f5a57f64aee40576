"""The capacity rule's states as a table: each row is one metering run of one organization."""

from __future__ import annotations

import datetime as dt

import pytest

from app.billing.capacity import CapacityState, Notice, after_plan_change, extended, transition

GRACE = dt.timedelta(days=7)
LIMIT = 1000
DEC = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
JAN = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def day(n: int, period: dt.datetime = DEC) -> dt.datetime:
    return period + dt.timedelta(days=n - 1)


# (day of the run, usage, period, state expected after it, emails)
TIMELINE = [
    (day(1), 10, DEC, "under", set()),
    (day(3), 1001, DEC, "grace", {Notice.DEPLETED}),  # grace from day 3 to day 10
    (day(5), 1500, DEC, "grace", set()),
    (day(8), 1600, DEC, "grace", {Notice.REMINDER}),  # 2 days before its end
    (day(9), 1700, DEC, "grace", set()),  # the reminder goes once
    (day(10), 1800, DEC, "dropping", set()),
    (day(11), 1800, DEC, "dropping", set()),
    (day(2, JAN), 5, JAN, "under", set()),  # the next period: collecting again
    (day(4, JAN), 1001, JAN, "grace", {Notice.DEPLETED}),  # a new period, a new email
]


def _name(state: CapacityState) -> str:
    if not state.accepting:
        return "dropping"
    return "grace" if state.in_grace else "under"


def test_the_timeline_of_two_periods() -> None:
    state = CapacityState()
    for now, usage, period, expected, emails in TIMELINE:
        state, notices = transition(
            state, usage=usage, limit=LIMIT, period_start=period, now=now, grace=GRACE
        )
        assert (_name(state), set(notices)) == (expected, emails), now
    assert state.grace_started_at == day(4, JAN)
    assert state.grace_ends_at == day(11, JAN)


def _over(state: CapacityState, now: dt.datetime, usage: int = 2000) -> CapacityState:
    after, _ = transition(state, usage=usage, limit=LIMIT, period_start=DEC, now=now, grace=GRACE)
    return after


def test_dropping_starts_when_the_grace_period_ends_and_keeps_its_start() -> None:
    state = _over(_over(CapacityState(), day(1)), day(8))
    assert (state.dropping_since, state.accepting) == (day(8), False)
    assert _over(state, day(9)).dropping_since == day(8)


def test_falling_back_under_the_limit_ends_grace_without_penalty() -> None:
    grace = _over(CapacityState(), day(1))
    back, notices = transition(
        grace, usage=999, limit=LIMIT, period_start=DEC, now=day(2), grace=GRACE
    )
    assert (back.grace_ends_at, back.dropping_since, notices) == (None, None, frozenset())
    again = _over(back, day(3))
    assert (again.grace_started_at, again.accepting) == (day(3), True)  # a fresh grace period
    assert (
        transition(back, usage=2000, limit=LIMIT, period_start=DEC, now=day(3), grace=GRACE)[1]
        == frozenset()
    )  # the depleted email went out once this period


@pytest.mark.parametrize("usage", [LIMIT, LIMIT - 1, 0])
def test_at_or_under_the_limit_is_under(usage: int) -> None:
    state, notices = transition(
        CapacityState(), usage=usage, limit=LIMIT, period_start=DEC, now=day(1), grace=GRACE
    )
    assert (_name(state), notices) == ("under", frozenset())


def test_an_upgrade_accepts_at_once_and_the_next_count_decides_on_the_new_limit() -> None:
    dropping = _over(_over(CapacityState(), day(1)), day(9))
    upgraded = after_plan_change(dropping)
    assert _name(upgraded) == "under"
    after, notices = transition(
        upgraded, usage=2000, limit=100_000, period_start=DEC, now=day(9), grace=GRACE
    )
    assert (_name(after), notices) == ("under", frozenset())


def test_a_zero_day_grace_drops_at_the_first_count_over() -> None:
    state, notices = transition(
        CapacityState(), usage=2000, limit=LIMIT, period_start=DEC, now=day(1), grace=dt.timedelta()
    )
    assert (_name(state), set(notices)) == ("dropping", {Notice.DEPLETED})


def test_staff_extending_the_grace_period_collects_again() -> None:
    dropping = _over(_over(CapacityState(), day(1)), day(9))
    longer = extended(dropping, 3, day(9))
    assert (longer.accepting, longer.grace_ends_at) == (True, day(12))
    assert _name(_over(longer, day(10))) == "grace"
    assert _name(_over(longer, day(12))) == "dropping"
