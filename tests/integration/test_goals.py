"""Goals: configured per site, counted as conversions (hand-computed), filtered by, exported."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.filters import Filter, goal_pattern
from app.analytics.queries.periods import resolve_period
from app.errors import InvalidInput
from app.models import Role
from app.services import Services
from app.sites.goals import MAX_GOALS, goal_name
from app.sites.registry import get_site
from tests.conftest import csrf_token, join, logged_in, new_user
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
AT = int(dt.datetime(2026, 11, 19, 9, tzinfo=dt.UTC).timestamp())
# (visitor, name, path, revenue): visitor 1 pays once, 3 signs up twice for free
EVENTS = [
    (1, "pageview", "/pricing", "0"),
    (1, "Signup", "/pricing", "10.00"),
    (2, "pageview", "/blog/a", "0"),
    (2, "pageview", "/blog/b", "0"),
    (3, "Signup", "/", "0"),
    (3, "Signup", "/", "0"),
    (4, "pageview", "/blogger", "0"),
]
GOALS = ("Signup", "Visit /blog/*", "Visit /pricing", "Purchase")


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    columns = ["visitor_id", "name", "pathname", "revenue"]
    data: list[list[Any]] = [[e[0] for e in EVENTS], [e[1] for e in EVENTS]]
    data += [[e[2] for e in EVENTS], [Decimal(e[3]) for e in EVENTS]]
    columns += ["site_id", "event_id", "timestamp", "session_id", "session_start"]
    data += [
        [found] * len(EVENTS),
        [found << 32 | index for index in range(len(EVENTS))],
        [AT + index for index in range(len(EVENTS))],
        [e[0] for e in EVENTS],  # one visit per visitor
        [int(index == 0 or EVENTS[index - 1][0] != e[0]) for index, e in enumerate(EVENTS)],
    ]
    services.clickhouse.insert("events", columns, data, token=f"goals:{uuid.uuid4()}")
    return found


def _scope(site_id: int, *filters: Filter) -> stats.Scope:
    return stats.Scope(site_id, resolve_period("7d", "UTC", NOW), filters, goals=GOALS)


def test_conversions_per_goal(services, site_id):
    rows = stats.conversions(services.clickhouse, _scope(site_id), GOALS)
    found = {r["goal"]: (r["visitors"], r["events"], r["conversion_rate"]) for r in rows}
    assert found == {
        "Signup": (2, 3, 50.0),
        "Visit /blog/*": (1, 2, 25.0),  # /blogger is not under /blog/
        "Visit /pricing": (1, 1, 25.0),
        "Purchase": (0, 0, 0.0),
    }
    signup = rows[0]
    assert (signup["revenue"], signup["average_revenue"]) == (Decimal(10), Decimal("10.00"))
    assert rows[1]["average_revenue"] is None
    assert stats.conversions(services.clickhouse, _scope(site_id), ()) == []


def test_unfiltered_conversions_from_the_rollups_equal_those_of_the_raw_events(services, site_id):
    # A paid page view: page goals take their visitors from the rollups, their revenue from it.
    paid = [[5], ["pageview"], ["/blog/c"], [Decimal("4.50")], [site_id], [site_id << 32 | 99]]
    paid += [[AT + 99], [5], [1]]
    columns = ["visitor_id", "name", "pathname", "revenue", "site_id", "event_id", "timestamp"]
    columns += ["session_id", "session_start"]
    services.clickhouse.insert("events", columns, paid, token=f"goals:{uuid.uuid4()}")
    everything = Filter("page", "is_not", ("/nowhere",))  # read raw, keeps every event
    from_rollups = stats.conversions(services.clickhouse, _scope(site_id), GOALS)
    raw = stats.conversions(services.clickhouse, _scope(site_id, everything), GOALS)
    assert from_rollups == raw
    blog = from_rollups[1]
    assert (blog["visitors"], blog["events"], blog["revenue"]) == (2, 3, Decimal("4.5"))
    assert blog["average_revenue"] == Decimal("4.50")


def test_a_goal_filter_keeps_the_converted_visitors_and_counts_conversions(services, site_id):
    signup = stats.overview(services.clickhouse, _scope(site_id, Filter("goal", "is", ("Signup",))))
    assert (signup["visitors"], signup["events"], signup["visits"]) == (2, 3, 2)
    blog = Filter("goal", "is", ("Visit /blog/*",))
    assert stats.overview(services.clickhouse, _scope(site_id, blog))["pageviews"] == 2
    either = Filter("goal", "is", ("Signup", "Visit /blog/*"))
    assert stats.overview(services.clickhouse, _scope(site_id, either))["visitors"] == 3
    not_signed_up = Filter("goal", "is_not", ("Signup",))
    assert stats.overview(services.clickhouse, _scope(site_id, not_signed_up))["visitors"] == 3
    with pytest.raises(InvalidInput, match="is_not"):
        stats.overview(services.clickhouse, _scope(site_id, Filter("goal", "contains", ("Sign",))))


def test_page_goal_patterns_match_whole_paths_with_stars_only():
    assert goal_pattern("/blog/*") == "^/blog/.*$"
    assert goal_pattern("/a.b") == r"^/a\.b$"  # a dot is a dot
    assert goal_name("page", " /pricing ") == "Visit /pricing"
    assert goal_name("event", "Signup") == "Signup"
    for kind, value in [("page", "pricing"), ("page", "/a b"), ("event", ""), ("event", "pageview"),
                        ("event", "Visit /x"), ("event", "x" * 121), ("plan", "x")]:  # fmt: skip
        with pytest.raises(InvalidInput):
            goal_name(kind, value)


async def _goal_form(http: Any, domain: str, path: str, **form: str) -> Any:
    token = await csrf_token(http, f"/{domain}/settings")
    return await http.post(
        f"/{domain}/settings/goals{path}",
        data={"csrf_token": token, **form},
        headers={"Accept": "text/html"},
    )


async def test_goals_are_added_and_removed_in_the_settings(owner_client, services, site_domain):
    added = await _goal_form(owner_client, site_domain, "", kind="event", value="Signup")
    assert added.status_code == 303
    assert added.headers["location"] == f"/{site_domain}/settings?saved=goals"
    assert (
        await _goal_form(owner_client, site_domain, "", kind="page", value="/blog/*")
    ).status_code == 303
    assert (await get_site(services.sessions, site_domain)).goals == ["Signup", "Visit /blog/*"]

    again = await _goal_form(owner_client, site_domain, "", kind="event", value="Signup")
    assert again.status_code == 400
    assert "Signup is a goal already." in again.text
    bad = await _goal_form(owner_client, site_domain, "", kind="page", value="blog")
    assert bad.status_code == 400
    assert 'value="blog"' in bad.text  # the form keeps what was typed

    removed = await _goal_form(owner_client, site_domain, "/delete", goal="Signup")
    assert removed.status_code == 303
    assert (await get_site(services.sessions, site_domain)).goals == ["Visit /blog/*"]
    missing = await _goal_form(owner_client, site_domain, "/delete", goal="<b>Nope</b>")
    assert missing.status_code == 400
    assert "&lt;b&gt;Nope&lt;/b&gt; is not a goal" in missing.text


async def test_viewers_cannot_change_goals_and_a_site_has_at_most_fifty(
    owner_client, services, site_domain
):
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        token = await csrf_token(http, "/")
        refused = await http.post(
            f"/{site_domain}/settings/goals",
            data={"csrf_token": token, "kind": "event", "value": "X"},
        )
        assert refused.status_code in (403, 404)
    for index in range(MAX_GOALS):
        assert (
            await _goal_form(owner_client, site_domain, "", kind="event", value=f"E{index}")
        ).status_code == 303
    full = await _goal_form(owner_client, site_domain, "", kind="event", value="One more")
    assert full.status_code == 400
    assert len((await get_site(services.sessions, site_domain)).goals) == MAX_GOALS


async def test_the_goals_card_and_the_conversion_tiles(
    owner_client, services, site_domain, site_id
):
    for kind, value in [("event", "Signup"), ("page", "/blog/*")]:
        assert (
            await _goal_form(owner_client, site_domain, "", kind=kind, value=value)
        ).status_code == 303
    view = "period=custom&from=2026-11-14&to=2026-11-20"
    card = await owner_client.get(f"/{site_domain}/cards/goals?{view}")
    assert card.status_code == 200
    assert '<td class="num" data-rate="Signup">50.0%</td>' in card.text
    assert "f=goal%3Ais%3AVisit+%2Fblog%2F%2A" in card.text  # a row filters by its goal
    overview = await owner_client.get(f"/{site_domain}/cards/overview?{view}&f=goal:is:Signup")
    assert '<span class="stat-value" data-metric="conversion_rate">50.0%</span>' in overview.text
    plain = await owner_client.get(f"/{site_domain}/cards/overview?{view}")
    assert "conversion_rate" not in plain.text
