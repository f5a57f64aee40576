"""The plans: constants that go up with the price, and the Stripe price ids from settings."""

from __future__ import annotations

import pytest

from app.billing.plans import (
    ALL_PLANS,
    BASIC,
    ENTERPRISE,
    FREE,
    PLANS_BY_CODE,
    PREMIUM,
    Feature,
    Interval,
    cheapest_with,
    plan_for_price,
    plan_named,
    priced_plans,
)
from app.settings import Settings

PRICES = {
    "STRIPE_PRICE_BASIC_MONTHLY": "price_basic_m",
    "STRIPE_PRICE_BASIC_YEARLY": "price_basic_y",
    "STRIPE_PRICE_PREMIUM_MONTHLY": "price_premium_m",
    "STRIPE_PRICE_PREMIUM_YEARLY": "price_premium_y",
}


def test_plans_by_code():
    assert [plan.code for plan in ALL_PLANS] == ["free", "basic", "premium", "enterprise"]
    assert {plan.code: plan for plan in ALL_PLANS} == PLANS_BY_CODE
    assert plan_named("premium") is PREMIUM
    assert plan_named("retired-plan") is FREE


@pytest.mark.parametrize(
    "limit",
    ["monthly_event_limit", "max_sites", "max_members", "max_alerts", "retention_months"],
)
def test_each_self_serve_plan_allows_more_than_the_one_below(limit):
    values = [getattr(plan, limit) for plan in (FREE, BASIC, PREMIUM)]
    assert values == sorted(set(values))
    assert getattr(ENTERPRISE, limit) == getattr(PREMIUM, limit)  # until staff override


def test_features_grow_with_the_plan():
    assert FREE.features < BASIC.features < PREMIUM.features == ENTERPRISE.features == set(Feature)
    assert cheapest_with(Feature.SEGMENTS) is BASIC
    assert cheapest_with(Feature.STATS_API) is PREMIUM
    assert [plan.self_serve for plan in ALL_PLANS] == [False, True, True, False]


def test_price_ids_come_from_settings():
    settings = Settings(_env_file=None, **PRICES)  # type: ignore[arg-type]
    priced = {plan.code: plan for plan in priced_plans(settings)}
    assert priced["basic"].price_id(Interval.MONTH) == "price_basic_m"
    assert priced["basic"].price_id(Interval.YEAR) == "price_basic_y"
    assert priced["premium"].price_id(Interval.YEAR) == "price_premium_y"
    assert (
        priced["free"].price_id(Interval.MONTH)
        == priced["enterprise"].price_id(Interval.YEAR)
        == ""
    )
    assert BASIC.stripe_price_id_monthly == ""  # the constants themselves carry none
    assert plan_for_price(settings, "price_premium_m") == priced["premium"]
    assert plan_for_price(settings, "price_unknown") is None
    assert plan_for_price(Settings(_env_file=None), "") is None
