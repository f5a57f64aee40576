"""The plans, as constants: what each one includes and allows.

Free needs no card. Basic and Premium are sold through Stripe Checkout, monthly or yearly; their
Stripe price ids come from settings (`priced_plans`), so the constants carry none. Enterprise is
set up by staff: its limits are Premium's unless the organization's billing profile overrides
them (`BillingProfile.custom_*`, read by `app.billing.entitlements`).

Like Plausible's tiers, every plan has the whole dashboard and goals; sharing the
dashboard by link and saved segments come with Basic, the Stats API with Premium.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from app.settings import Settings


class Feature(enum.StrEnum):
    """What a plan may switch on, beyond the dashboard every plan has."""

    SHARED_LINKS = "shared_links"  # password-protected links to a site's dashboard
    SEGMENTS = "segments"  # filter sets saved under a name
    STATS_API = "stats_api"  # the Stats API (v1 and v2) with API keys

    @property
    def label(self) -> str:
        return FEATURE_LABELS[self]


FEATURE_LABELS = {
    Feature.SHARED_LINKS: "Shared links",
    Feature.SEGMENTS: "Segments",
    Feature.STATS_API: "Stats API",
}


class Interval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Plan:
    code: str
    display_name: str
    features: frozenset[Feature]
    monthly_event_limit: int  # billable events (pageviews + custom events) per billing period
    max_sites: int
    max_members: int  # members, and open invitations, of the organization
    max_alerts: int
    retention_months: int  # how far back the dashboard and the API may look
    stripe_price_id_monthly: str = ""  # "" for plans not sold through Checkout
    stripe_price_id_yearly: str = ""
    price_monthly_eur: int = 0  # what the pricing page shows; Stripe's price is what is charged
    price_yearly_eur: int = 0

    def price_id(self, interval: Interval) -> str:
        if interval is Interval.YEAR:
            return self.stripe_price_id_yearly
        return self.stripe_price_id_monthly

    @property
    def self_serve(self) -> bool:
        """Sold through Checkout (Basic, Premium); Free needs no card, Enterprise is staff's."""
        return self.price_monthly_eur > 0


FREE = Plan(
    code="free",
    display_name="Free",
    features=frozenset(),
    monthly_event_limit=10_000,
    max_sites=3,
    max_members=3,
    max_alerts=1,
    retention_months=12,
)
BASIC = Plan(
    code="basic",
    display_name="Basic",
    features=frozenset({Feature.SHARED_LINKS, Feature.SEGMENTS}),
    monthly_event_limit=100_000,
    max_sites=10,
    max_members=5,
    max_alerts=10,
    retention_months=36,
    price_monthly_eur=9,
    price_yearly_eur=90,
)
PREMIUM = Plan(
    code="premium",
    display_name="Premium",
    features=frozenset(Feature),
    monthly_event_limit=1_000_000,
    max_sites=50,
    max_members=10,
    max_alerts=50,
    retention_months=60,
    price_monthly_eur=29,
    price_yearly_eur=290,
)
ENTERPRISE = dataclasses.replace(
    PREMIUM, code="enterprise", display_name="Enterprise", price_monthly_eur=0, price_yearly_eur=0
)

# Stripe subscription statuses in which the subscription's plan (and its period) applies; any
# other (canceled, unpaid, incomplete, incomplete_expired, paused) means Free's limits.
PAYING_STATUSES = frozenset({"active", "trialing", "past_due"})

ALL_PLANS: tuple[Plan, ...] = (FREE, BASIC, PREMIUM, ENTERPRISE)
PLANS_BY_CODE: dict[str, Plan] = {plan.code: plan for plan in ALL_PLANS}


def plan_named(code: str) -> Plan:
    """The plan of a stored `plan_code`; an unknown code (a plan retired since) is Free."""
    return PLANS_BY_CODE.get(code, FREE)


def cheapest_with(feature: Feature) -> Plan:
    """The first self-serve plan that includes `feature` (what an upgrade link offers)."""
    return next(plan for plan in ALL_PLANS if plan.self_serve and feature in plan.features)


def priced_plans(settings: Settings) -> tuple[Plan, ...]:
    """`ALL_PLANS` carrying the Stripe price ids configured in `settings`."""
    prices = {
        BASIC.code: (settings.STRIPE_PRICE_BASIC_MONTHLY, settings.STRIPE_PRICE_BASIC_YEARLY),
        PREMIUM.code: (settings.STRIPE_PRICE_PREMIUM_MONTHLY, settings.STRIPE_PRICE_PREMIUM_YEARLY),
    }
    return tuple(
        dataclasses.replace(
            plan,
            stripe_price_id_monthly=prices[plan.code][0],
            stripe_price_id_yearly=prices[plan.code][1],
        )
        if plan.code in prices
        else plan
        for plan in ALL_PLANS
    )


def plan_for_price(settings: Settings, price_id: str) -> Plan | None:
    """The plan a Stripe price id (of a subscription item) belongs to; None if no plan's."""
    for plan in priced_plans(settings):
        if price_id and price_id in (plan.stripe_price_id_monthly, plan.stripe_price_id_yearly):
            return plan
    return None
