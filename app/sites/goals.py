"""A site's goals: the custom events and page visits it counts as conversions.

A goal is its name: a custom event's name (`Signup`), or `Visit ` and a path pattern for a
page goal (`Visit /pricing`, `Visit /blog/*`; `*` matches any characters, `/` included), as
Plausible names them. The name is also the goal filter's value, so a filtered view needs no
lookup: `app.analytics.queries.filters` reads the definition from it.
"""

from __future__ import annotations

from app.analytics.queries.filters import PAGE_GOAL_PREFIX
from app.db import SessionMaker
from app.errors import InvalidInput
from app.models import Site
from app.sites.registry import update_site

MAX_GOALS = 50
MAX_EVENT_NAME = 120
MAX_PATH = 500


def goal_name(kind: str, value: str) -> str:
    """The goal a settings form describes: `kind` is "event" or "page"."""
    value = value.strip()
    if kind == "event":
        if not value or len(value) > MAX_EVENT_NAME:
            raise InvalidInput(f"An event name has 1 to {MAX_EVENT_NAME} characters.")
        if value == "pageview" or value.startswith(PAGE_GOAL_PREFIX):
            raise InvalidInput("For page views, add a page goal with the page's path.")
        return value
    if kind == "page":
        if not value.startswith("/") or len(value) > MAX_PATH or any(c.isspace() for c in value):
            raise InvalidInput(f"A page path starts with / and has at most {MAX_PATH} characters.")
        return PAGE_GOAL_PREFIX + value
    raise InvalidInput("A goal is a custom event or a page visit.")


async def add_goal(sessions: SessionMaker, site: Site, kind: str, value: str) -> str:
    name = goal_name(kind, value)
    if name in site.goals:
        raise InvalidInput(f"{name} is a goal already.")
    if len(site.goals) >= MAX_GOALS:
        raise InvalidInput(f"A site has at most {MAX_GOALS} goals.")
    await update_site(sessions, site, goals=[*site.goals, name])
    return name


async def remove_goal(sessions: SessionMaker, site: Site, name: str) -> None:
    if name not in site.goals:
        raise InvalidInput(f"{name[:80]} is not a goal of this site.")
    await update_site(sessions, site, goals=[goal for goal in site.goals if goal != name])
