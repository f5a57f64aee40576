"""Plan and feature gating, as tables: what each plan allows and how a refusal reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.billing.entitlements import Limits, entitlements_of, months_before, require
from app.billing.plans import ALL_PLANS, BASIC, ENTERPRISE, FREE, PREMIUM, Feature
from app.errors import PlanLimitReached
from app.models import BillingProfile

ORG = 42


def on(code: str, **custom: Any) -> BillingProfile:
    return BillingProfile(organization_id=ORG, plan_code=code, **custom)


@pytest.mark.parametrize(
    ("plan", "feature", "allowed"),
    [
        (FREE, Feature.SHARED_LINKS, False),
        (FREE, Feature.SEGMENTS, False),
        (FREE, Feature.STATS_API, False),
        (BASIC, Feature.SHARED_LINKS, True),
        (BASIC, Feature.SEGMENTS, True),
        (BASIC, Feature.STATS_API, False),
        (PREMIUM, Feature.SHARED_LINKS, True),
        (PREMIUM, Feature.SEGMENTS, True),
        (PREMIUM, Feature.STATS_API, True),
        (ENTERPRISE, Feature.STATS_API, True),
    ],
)
def test_features_by_plan(plan, feature, allowed):
    refusal = entitlements_of(on(plan.code)).feature(feature)
    assert (refusal is None) is allowed


def test_a_refused_feature_names_the_plan_and_the_upgrade():
    refusal = entitlements_of(on("free")).feature(Feature.STATS_API)
    assert refusal is not None
    assert (
        refusal.message == "The Free plan does not include Stats API. Upgrade to Premium or above."
    )
    assert (refusal.plan_code, refusal.upgrade_url) == ("free", f"/orgs/{ORG}/billing")
    with pytest.raises(PlanLimitReached) as raised:
        require(refusal)
    assert raised.value.status_code == 402
    assert (raised.value.plan_code, raised.value.upgrade_url) == ("free", f"/orgs/{ORG}/billing")
    require(None)  # allowed: nothing raised


@pytest.mark.parametrize("plan", ALL_PLANS, ids=lambda plan: plan.code)
@pytest.mark.parametrize(
    ("question", "limit"),
    [
        ("one_more_site", "max_sites"),
        ("one_more_member", "max_members"),
        ("one_more_alert", "max_alerts"),
    ],
)
def test_counted_limits_allow_up_to_the_plans_number(plan, question, limit):
    entitlements = entitlements_of(on(plan.code))
    allowed = getattr(plan, limit)
    ask = getattr(entitlements, question)
    assert ask(0) is None
    assert ask(allowed - 1) is None
    assert ask(allowed) is not None
    assert ask(allowed + 5) is not None  # over after a downgrade: still refused, never an error


def test_a_reached_limit_says_how_many():
    refusal = entitlements_of(on("free")).one_more_site(3)
    assert refusal is not None
    assert refusal.message == (
        "The Free plan allows 3 sites per organization, and this one has 3. Upgrade to add more."
    )
    single = entitlements_of(on("enterprise", custom_max_alerts=1)).one_more_alert(1)
    assert single is not None
    assert "allows 1 traffic alert per organization" in single.message


def test_enterprise_limits_are_set_per_organization():
    custom = {
        "custom_monthly_event_limit": 50_000_000,
        "custom_max_sites": 500,
        "custom_max_members": 2,
        "custom_max_alerts": 0,
        "custom_retention_months": 120,
    }
    assert entitlements_of(on("enterprise", **custom)).limits == Limits(50_000_000, 500, 2, 0, 120)
    partly = entitlements_of(on("enterprise", custom_max_sites=500)).limits
    assert partly == Limits(PREMIUM.monthly_event_limit, 500, 10, 50, 60)
    # Custom limits count for Enterprise only: a cancelled enterprise falls back to Free's.
    assert entitlements_of(on("free", **custom)).limits == Limits.of(FREE)


def test_an_unknown_plan_code_is_free():
    entitlements = entitlements_of(on("gold-2019"))
    assert entitlements.plan is FREE
    assert entitlements.feature(Feature.SEGMENTS) is not None


@pytest.mark.parametrize(
    ("code", "start", "allowed"),
    [
        ("free", dt.date(2025, 12, 8), True),  # exactly 12 months back
        ("free", dt.date(2025, 12, 7), False),
        ("basic", dt.date(2023, 12, 8), True),
        ("basic", dt.date(2023, 12, 7), False),
        ("premium", dt.date(2021, 12, 8), True),
        ("premium", dt.date(2021, 12, 7), False),
    ],
)
def test_retention(code, start, allowed):
    refusal = entitlements_of(on(code)).data_since(start, dt.date(2026, 12, 8))
    assert (refusal is None) is allowed


def test_an_old_start_is_refused_with_the_horizon():
    refusal = entitlements_of(on("free")).data_since(dt.date(2020, 1, 1), dt.date(2026, 12, 8))
    assert refusal is not None
    assert refusal.message == "The Free plan shows the last 12 months of data: 2020-01-01 is older."


@pytest.mark.parametrize(
    ("day", "months", "before"),
    [
        (dt.date(2026, 12, 8), 12, dt.date(2025, 12, 8)),
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2024, 3, 31), 1, dt.date(2024, 2, 29)),
        (dt.date(2026, 1, 15), 1, dt.date(2025, 12, 15)),
        (dt.date(2026, 1, 15), 0, dt.date(2026, 1, 15)),
        (dt.date(2026, 5, 31), 60, dt.date(2021, 5, 31)),
    ],
)
def test_months_before(day, months, before):
    assert months_before(day, months) == before
