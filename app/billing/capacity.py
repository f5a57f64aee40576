"""The capacity rule: what happens when an organization uses more events than its plan allows.

Crossing the limit never stops collection at once. The states, decided by `transition` (pure;
the metering job applies it every 15 minutes, `app.billing.metering`):

    under ──usage over the limit──▶ grace (CAPACITY_GRACE_DAYS; "capacity depleted" email)
    grace ──2 days before its end──▶ grace (reminder email)
    grace ──its end, still over──▶ dropping (new events refused, still answered 202)
    grace or dropping ──usage back under the limit──▶ under (no penalty)
    any ──next billing period──▶ under, then decided afresh on the new period's usage
    any ──plan change (`after_plan_change`)──▶ under, then decided afresh on the new limit

Each email goes out at most once per billing period (the period is stored with it). Billing
periods are UTC instants (`app.billing.metering`).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

REMINDER_BEFORE_END = dt.timedelta(days=2)


class Notice(enum.StrEnum):
    """An email the transition asks for (at most once per period)."""

    DEPLETED = "capacity_depleted"
    REMINDER = "capacity_reminder"


@dataclass(frozen=True)
class CapacityState:
    period_start: dt.datetime | None = None
    grace_started_at: dt.datetime | None = None
    grace_ends_at: dt.datetime | None = None
    dropping_since: dt.datetime | None = None
    depleted_email_period: dt.datetime | None = None
    reminder_email_period: dt.datetime | None = None

    @property
    def accepting(self) -> bool:
        return self.dropping_since is None

    @property
    def in_grace(self) -> bool:
        return self.grace_ends_at is not None and self.dropping_since is None


def _cleared(state: CapacityState) -> CapacityState:
    return replace(state, grace_started_at=None, grace_ends_at=None, dropping_since=None)


def transition(
    state: CapacityState,
    *,
    usage: int,
    limit: int,
    period_start: dt.datetime,
    now: dt.datetime,
    grace: dt.timedelta,
) -> tuple[CapacityState, frozenset[Notice]]:
    """The state after a count of `usage` events in the period starting at `period_start`,
    and the emails to send."""
    if state.period_start != period_start:
        state = replace(_cleared(state), period_start=period_start)
    if usage <= limit:
        return _cleared(state), frozenset()
    notices: set[Notice] = set()
    if state.grace_ends_at is None:
        state = replace(state, grace_started_at=now, grace_ends_at=now + grace)
    if state.depleted_email_period != period_start:
        state = replace(state, depleted_email_period=period_start)
        notices.add(Notice.DEPLETED)
    ends = state.grace_ends_at or now
    if now >= ends:
        state = replace(state, dropping_since=state.dropping_since or now)
    elif now >= ends - REMINDER_BEFORE_END and state.reminder_email_period != period_start:
        state = replace(state, reminder_email_period=period_start)
        notices.add(Notice.REMINDER)
    return state, frozenset(notices)


def after_plan_change(state: CapacityState) -> CapacityState:
    """An upgrade (any plan change) restores collection at once; the next count decides anew
    against the new limit. The emails already sent this period stay sent."""
    return _cleared(state)


def extended(state: CapacityState, days: int, now: dt.datetime) -> CapacityState:
    """The grace period `days` longer (staff); a grace period now running again accepts."""
    start = state.grace_started_at or now
    ends = max(state.grace_ends_at or now, now) + dt.timedelta(days=days)
    return replace(state, grace_started_at=start, grace_ends_at=ends, dropping_since=None)
