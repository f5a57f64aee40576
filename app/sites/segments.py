"""A site's segments: sets of dashboard filters saved under a name, shared by its members.

A segment keeps its filters in the dashboard's URL form (`page:is:/pricing`), so choosing one
is a link, and they are checked the way a URL's are (`app.dashboard.view.parse_filter`).
"""

from __future__ import annotations

from typing import Any

from app.analytics.queries.filters import MAX_FILTERS, Filter
from app.dashboard.view import join_values
from app.db import SessionMaker
from app.errors import InvalidInput
from app.models import Site
from app.sites.registry import update_site

MAX_SEGMENTS = 50
MAX_NAME = 80


def url_filters(filters: tuple[Filter, ...]) -> list[str]:
    return [f"{f.dimension}:{f.operator}:{join_values(f.values)}" for f in filters]


async def save_segment(
    sessions: SessionMaker, site: Site, name: str, filters: tuple[Filter, ...]
) -> dict[str, Any]:
    """Save `filters` as the segment `name` (replacing one of that name)."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"A segment's name has 1 to {MAX_NAME} characters.")
    if not filters or len(filters) > MAX_FILTERS:
        raise InvalidInput("A segment is a set of filters: filter the dashboard first.")
    kept = [s for s in site.segments if s["name"] != name]
    if len(kept) >= MAX_SEGMENTS:
        raise InvalidInput(f"A site has at most {MAX_SEGMENTS} segments.")
    segment = {"name": name, "filters": url_filters(filters)}
    await update_site(sessions, site, segments=[*kept, segment])
    return segment


async def delete_segment(sessions: SessionMaker, site: Site, name: str) -> None:
    kept = [s for s in site.segments if s["name"] != name]
    if len(kept) == len(site.segments):
        raise InvalidInput(f"No segment is named {name[:80]}.")
    await update_site(sessions, site, segments=kept)
