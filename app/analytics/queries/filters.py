"""Filters on dimensions, and the one where-builder every filtered query uses.

A filter names a dimension, an operator and one or more values (several values = OR); filters
combine with AND. Dimensions are of three kinds, which decide what a filter restricts (the
rules Plausible documents):

- *event* dimensions (page, hostname, goal, event name, custom properties) describe one event:
  event metrics (pageviews, events) count the matching events only, visitors are those with a
  matching event, and visit metrics (visits, bounce rate, visit duration) cover the visits that
  contain a matching event, with all of their pages. A visit filtered by "page is /pricing"
  keeps its bounce and duration as a whole visit.
- *visit* dimensions (source, channel, UTM tags, location, device, browser, OS) are the same
  on every event of a visit (the worker copies the entry's source and UTM tags onto each event;
  the rest is stable per visitor), so they are plain conditions on the events.
- *entry* and *exit* page describe where a visit began and ended: a subquery finds those visits.

The Stats API's filter trees (`and` / `or` / `not` over filters) are `Combination`s: a tree
that names an event dimension anywhere restricts events (and visits to those with such an
event) by the whole tree's condition, one of visit dimensions only restricts visits.

Every value is a bound query parameter; no value is ever written into the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.analytics.queries import channels
from app.errors import InvalidInput

Kind = Literal["event", "visit", "entry", "exit"]
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
NEGATED = {"is_not", "contains_not", "matches_not"}
MAX_FILTERS = 20
MAX_VALUES = 50
MAX_VALUE_LENGTH = 2000
PROP_PREFIX = "prop:"
PAGE_GOAL_PREFIX = "Visit "  # a goal named `Visit /pricing` is a page goal (`app.sites.goals`)
EXIT_PAGE = "argMax(pathname, timestamp)"  # over a visit's page views: its last page
PROP_NAME = re.compile(r"[^\x00-\x1f:]{1,300}")


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    label: str
    kind: Kind
    column: str  # the value on a raw event row (a column, or an expression over columns)
    rollup: str | None = None  # its `breakdowns_daily.dimension`, when it has one
    params: dict[str, Any] = field(default_factory=dict, hash=False)  # what `column` binds
    rollup_value: str = "value"  # the value of a rollup row (an expression over its `value`)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("page", "Page", "event", "pathname", "page"),
        Dimension("entry_page", "Entry page", "entry", "pathname", "entry_page"),
        Dimension("exit_page", "Exit page", "exit", "pathname"),
        Dimension("hostname", "Hostname", "event", "hostname", "hostname"),
        Dimension("event", "Event", "event", "name"),
        Dimension("goal", "Goal", "event", "name"),
        Dimension("source", "Source", "visit", "referrer_source", "source"),
        Dimension(
            "channel",
            "Channel",
            "visit",
            channels.CHANNEL,
            channels.ROLLUP_INPUTS,
            channels.PARAMS,
            channels.CHANNEL_OF_INPUTS,
        ),
        Dimension("referrer", "Referrer URL", "visit", "referrer"),
        Dimension("utm_medium", "UTM medium", "visit", "utm_medium", "utm_medium"),
        Dimension("utm_source", "UTM source", "visit", "utm_source", "utm_source"),
        Dimension("utm_campaign", "UTM campaign", "visit", "utm_campaign", "utm_campaign"),
        Dimension("utm_content", "UTM content", "visit", "utm_content", "utm_content"),
        Dimension("utm_term", "UTM term", "visit", "utm_term", "utm_term"),
        Dimension("country", "Country", "visit", "country_code", "country"),
        Dimension("region", "Region", "visit", "region", "region"),
        Dimension("city", "City", "visit", "city", "city"),
        Dimension("browser", "Browser", "visit", "browser", "browser"),
        Dimension(
            "browser_version", "Browser version", "visit", "browser_version", "browser_version"
        ),
        Dimension("os", "Operating system", "visit", "os", "os"),
        Dimension("os_version", "OS version", "visit", "os_version", "os_version"),
        Dimension("device", "Device", "visit", "device", "device"),
        Dimension("screen_size", "Screen size", "visit", "screen_size", "screen_size"),
    )
}


def dimension(name: str) -> Dimension:
    """The dimension `name` names; `prop:<key>` is the custom property `key` of an event."""
    if name.startswith(PROP_PREFIX):
        key = name.removeprefix(PROP_PREFIX)
        if not PROP_NAME.fullmatch(key):
            raise InvalidInput(f"bad property name in filter dimension {name!r}")
        return Dimension(name, key, "event", "props[{%s:String}]", name)
    found = DIMENSIONS.get(name)
    if found is None:
        raise InvalidInput(f"unknown filter dimension {name!r}")
    return found


@dataclass(frozen=True, slots=True)
class Filter:
    dimension: str
    operator: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        dimension(self.dimension)  # raises on an unknown one
        if self.operator not in OPERATORS:
            raise InvalidInput(
                f"unknown filter operator {self.operator!r}; use one of {', '.join(OPERATORS)}"
            )
        if not self.values or len(self.values) > MAX_VALUES:
            raise InvalidInput(f"a filter takes 1 to {MAX_VALUES} values")
        for value in self.values:
            if not isinstance(value, str):
                raise InvalidInput("filter values must be strings")
            if len(value) > MAX_VALUE_LENGTH:
                raise InvalidInput(f"a filter value is at most {MAX_VALUE_LENGTH} characters")
            if self.operator in ("matches", "matches_not"):
                check_pattern(value)

    @property
    def kind(self) -> Kind:
        return dimension(self.dimension).kind


MAX_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Combination:
    """`and` / `or` over one or more clauses, or `not` over exactly one."""

    operator: Literal["and", "or", "not"]
    items: tuple[Clause, ...]

    def __post_init__(self) -> None:
        if self.operator not in ("and", "or", "not"):
            raise InvalidInput(f"unknown filter combination {self.operator!r}")
        if self.operator == "not" and len(self.items) != 1:
            raise InvalidInput("`not` takes exactly one filter")
        if not self.items:
            raise InvalidInput(f"`{self.operator}` takes at least one filter")
        if _depth(self) > MAX_DEPTH:
            raise InvalidInput(f"filters nest at most {MAX_DEPTH} levels deep")
        if len(leaves(self)) > MAX_FILTERS:
            raise InvalidInput(f"at most {MAX_FILTERS} filters at once")

    @property
    def kind(self) -> Kind:
        """`event` when any filter in it is on an event dimension, else `visit`."""
        return "event" if any(leaf.kind == "event" for leaf in leaves(self)) else "visit"


Clause = Filter | Combination


def leaves(clause: Clause) -> list[Filter]:
    if isinstance(clause, Filter):
        return [clause]
    return [leaf for item in clause.items for leaf in leaves(item)]


def _depth(clause: Clause) -> int:
    if isinstance(clause, Filter):
        return 0
    return 1 + max(_depth(item) for item in clause.items)


def check_pattern(pattern: str) -> None:
    """Refuse a regular expression ClickHouse's RE2 would reject (or that `re` cannot read)."""
    if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
        raise InvalidInput("lookarounds and backreferences are not supported in patterns")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"bad pattern {pattern!r}: {exc}") from None


def combine(filters: Iterable[Filter]) -> tuple[Filter, ...]:
    """Filters as a set: the same dimension and operator given twice is one filter whose
    values are alternatives (a URL repeats `f=page:is:/a&f=page:is:/b`)."""
    merged: dict[tuple[str, str], list[str]] = {}
    for item in filters:
        values = merged.setdefault((item.dimension, item.operator), [])
        values.extend(value for value in item.values if value not in values)
    if len(merged) > MAX_FILTERS:
        raise InvalidInput(f"at most {MAX_FILTERS} filters at once")
    return tuple(Filter(name, op, tuple(values)) for (name, op), values in merged.items())


@dataclass
class Where:
    """Conditions of one filtered query over raw `events`, with their parameters.

    `visits` selects the rows of every visit the filters keep; `events` (a condition on top of
    those rows) picks the events that event metrics count. Both are "1" when nothing restricts.
    `matching` is `visits AND events` without the subquery that finds visits by their events (a
    matching event is in a kept visit by definition): the same rows, in one pass, for a query
    whose metrics count only those rows.
    """

    visits: str
    events: str
    params: dict[str, Any] = field(default_factory=dict)
    matching: str = "1"


class _Params:
    def __init__(self, prefix: str = "f") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, kind: str) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"


def where(filters: Sequence[Clause], base: str, prefix: str = "f") -> Where:
    """The conditions for `filters` over rows already restricted by `base` (site and time).

    `base` is also the range of the subqueries that find visits by entry, exit or event.
    Parameters are named `<prefix><n>`: two `Where`s of one query take different prefixes.
    """
    params = _Params(prefix)
    visit_terms: list[str] = []
    event_terms: list[str] = []
    for item in filters:
        terms = event_terms if item.kind == "event" else visit_terms
        terms.append(_tree(item, params, base))
    events = " AND ".join(f"({term})" for term in event_terms) or "1"
    matching = " AND ".join(f"({term})" for term in (*visit_terms, *event_terms)) or "1"
    if event_terms:
        visit_terms.append(
            f"session_id IN (SELECT session_id FROM events WHERE {base} AND {events})"
        )
    visits = " AND ".join(f"({term})" for term in visit_terms) or "1"
    return Where(visits, events, params.values, matching)


def _tree(clause: Clause, params: _Params, base: str) -> str:
    """One condition on an event row for a whole tree; entry and exit filters in it select
    visits by a subquery, as they do alone."""
    if isinstance(clause, Combination):
        parts = [_tree(item, params, base) for item in clause.items]
        if clause.operator == "not":
            return f"NOT ({parts[0]})"
        return f" {clause.operator.upper()} ".join(f"({part})" for part in parts)
    spec = dimension(clause.dimension)
    column = EXIT_PAGE if spec.kind == "exit" else _column(spec, params)
    condition = _condition(column, clause, params)
    if spec.kind in ("entry", "exit"):
        return _entry_or_exit(spec.kind, condition, base)
    return condition


# A page load (a `performance` row) carries its page, country, browser and device, nothing of
# the visit it belongs to: only filters on those apply to it.
PAGE_LOAD_DIMENSIONS = frozenset({"page", "country", "browser", "device"})


def page_load_where(filters: Sequence[Clause]) -> tuple[Where, tuple[Clause, ...]]:
    """The condition (`Where.visits`) over page loads for the filters that apply to them, and
    the filters that cannot (the page says they were left aside; a tree is left aside whole)."""
    params = _Params()
    terms: list[str] = []
    ignored: list[Clause] = []
    for item in filters:
        if isinstance(item, Filter) and item.dimension in PAGE_LOAD_DIMENSIONS:
            terms.append(_condition(dimension(item.dimension).column, item, params))
        else:
            ignored.append(item)
    rows = " AND ".join(f"({term})" for term in terms) or "1"
    return Where(rows, "1", params.values), tuple(ignored)


# An engagement row carries its page and hostname, and its visit's source, UTM values,
# location, software and screen size: filters on those are conditions on the row itself. The
# others (entry and exit page, event, goal, property, referrer URL, and any tree) keep the rows
# of the visits they keep (`where`), found by the row's `session_id`.
ENGAGEMENT_DIMENSIONS = frozenset(DIMENSIONS) - {
    "entry_page",
    "exit_page",
    "event",
    "goal",
    "referrer",
}


def engagement_where(filters: Sequence[Clause], base: str) -> Where:
    """The condition (`Where.visits`) over the engagement rows of `base` that `filters` keep:
    the beacons of the pages and visits they keep."""
    params = _Params("e")
    terms: list[str] = []
    by_visit: list[Clause] = []
    for item in filters:
        if isinstance(item, Filter) and item.dimension in ENGAGEMENT_DIMENSIONS:
            column = _column(dimension(item.dimension), params)
            terms.append(_condition(column, item, params))
        else:
            by_visit.append(item)
    if by_visit:
        visits = where(by_visit, base)
        params.values.update(visits.params)
        terms.append(
            f"session_id IN (SELECT session_id FROM events WHERE {base} AND {visits.visits})"
        )
    rows = " AND ".join(f"({term})" for term in terms) or "1"
    return Where(rows, "1", params.values)


def _column(spec: Dimension, params: _Params) -> str:
    if spec.name.startswith(PROP_PREFIX):
        return f"props[{params.bind(spec.label, 'String')}]"
    params.values.update(spec.params)
    return spec.column


def _condition(column: str, item: Filter, params: _Params) -> str:
    if item.dimension == "goal":
        return _goal_condition(item, params)
    values = params.bind(list(item.values), "Array(String)")
    operator = item.operator.removesuffix("_not")
    if operator == "is":
        # A set lookup: on a LowCardinality column it compares dictionary positions, where
        # `has(array, column)` compared every row's string (4x slower over a month of events).
        positive = f"{column} IN {values}"
    elif operator == "contains":
        lowered = params.bind([value.lower() for value in item.values], "Array(String)")
        positive = f"arrayExists(v -> positionUTF8(lowerUTF8({column}), v) > 0, {lowered})"
    else:
        positive = f"arrayExists(r -> match({column}, r), {values})"
    return f"NOT {positive}" if item.operator in NEGATED else positive


def goal_pattern(path: str) -> str:
    """A page goal's path pattern as an anchored regular expression (`*`: any characters)."""
    return "^" + ".*".join(re.escape(part) for part in path.split("*")) + "$"


def _goal_condition(item: Filter, params: _Params) -> str:
    """The events that complete one of the goals named: a custom event of that name, or a page
    view of a path the page goal's pattern matches."""
    if item.operator not in ("is", "is_not"):
        raise InvalidInput("a goal filter is `is` or `is_not`")
    terms = []
    for goal in item.values:
        if goal.startswith(PAGE_GOAL_PREFIX):
            pattern = params.bind(goal_pattern(goal.removeprefix(PAGE_GOAL_PREFIX)), "String")
            terms.append(f"(name = 'pageview' AND match(pathname, {pattern}))")
        else:
            terms.append(f"name = {params.bind(goal, 'String')}")
    positive = " OR ".join(terms)
    return f"NOT ({positive})" if item.operator == "is_not" else f"({positive})"


def _entry_or_exit(kind: Kind, condition: str, base: str) -> str:
    """Visits whose first (entry) or last (exit) page matches: one row per visit."""
    if kind == "entry":
        return (
            "session_id IN (SELECT session_id FROM events "
            f"WHERE {base} AND session_start = 1 AND {condition})"
        )
    return (
        "session_id IN (SELECT session_id FROM events "
        f"WHERE {base} AND name = 'pageview' GROUP BY session_id HAVING {condition})"
    )
