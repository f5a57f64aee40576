"""Each visitor's deepest scroll per page: what makes engagement additive per page and day.

Time on page and scroll depth are per pair of page and visitor (`queries.engagement`): the
engaged time of all of a visitor's beacons of a page, and the deepest of their scroll depths.
A sum over beacons gives the first; the second needs each pair's maximum. So the worker keeps,
per visitor and page, the deepest scroll it has stored so far, and stamps each beacon with
`first_beacon` (1 when it is the pair's first) and `depth_gain` (how far it deepens the pair's
maximum). Summed over a page's beacons these give its pairs and the sum of their deepest
points: plain sums that the `engagement_daily` rollup adds up per page and day.

Visitor ids change every UTC day (`ingest.visitor`), so a pair is a page and a visitor of one
day, as the raw query counts them. The state lives in Redis beside the visits (`keys.ENGAGED`,
a hash per visitor) and is written after the batch's insert like theirs, so a replayed batch
computes the same stamps; it expires after two days, when no beacon can reach that id anymore.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from app.store import keys

STATE_TTL_SECONDS = 2 * 24 * 3600

Pair = tuple[int, int, str]  # (site id, visitor id, page)
Depths = dict[Pair, int]  # each pair's deepest scroll so far (whole percent)


def stamp(pairs: Iterable[tuple[Pair, int]], depths: Depths) -> tuple[list[int], list[int]]:
    """`first_beacon` and `depth_gain` of each beacon (its pair and scroll depth, in stream
    order); `depths` is updated in place."""
    firsts, gains = [], []
    for pair, depth in pairs:
        deepest = depths.get(pair)
        firsts.append(int(deepest is None))
        gains.append(max(depth - (deepest or 0), 0))
        depths[pair] = max(depth, deepest or 0)
    return firsts, gains


def load(client: redis.Redis, pairs: Iterable[Pair], carried: Depths) -> Depths:
    """The stored deepest scroll of `pairs` (those in `carried`, newer, from there)."""
    pairs = list(pairs)
    wanted: dict[tuple[int, int], set[str]] = {}
    for pair in pairs:
        if pair not in carried:
            wanted.setdefault(pair[:2], set()).add(pair[2])
    found = {pair: carried[pair] for pair in pairs if pair in carried}
    if not wanted:
        return found
    asked = [(visitor, sorted(pages)) for visitor, pages in wanted.items()]
    with client.pipeline(transaction=False) as pipe:
        for visitor, pages in asked:
            pipe.hmget(_key(visitor), pages)
        replies: list[Any] = pipe.execute()
    for (visitor, pages), values in zip(asked, replies, strict=True):
        for page, value in zip(pages, values, strict=True):
            if value is not None:
                found[(*visitor, page)] = int(value)
    return found


def save(client: redis.Redis, depths: Depths) -> None:
    by_visitor: dict[tuple[int, int], dict[str, int]] = {}
    for (site, visitor, page), depth in depths.items():
        by_visitor.setdefault((site, visitor), {})[page] = depth
    if not by_visitor:
        return
    with client.pipeline(transaction=False) as pipe:
        for owner, pages in by_visitor.items():
            pipe.hset(_key(owner), mapping=pages)  # type: ignore[arg-type]
            pipe.expire(_key(owner), STATE_TTL_SECONDS)
        pipe.execute()


def _key(visitor: tuple[int, int]) -> str:
    return f"{keys.ENGAGED}{visitor[0]}:{visitor[1]}"
