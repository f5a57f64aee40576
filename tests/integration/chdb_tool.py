"""Open an embedded ClickHouse (chDB) directory in a process of its own, for crash tests.

One chDB directory can be open in one process only, and a test process may already hold
another one, so tests reach the worker's directory through this script:

    python tests/integration/chdb_tool.py prepare DIR [--no-dedup-window]
    python tests/integration/chdb_tool.py inspect DIR REQUEST.json RESULT.json

`prepare` applies the ClickHouse migrations; `--no-dedup-window` then turns off the events
table's insert deduplication (what a plain MergeTree does), to show that a test can fail.

`inspect` reads a JSON request `{"site_id", "start", "end", "queries": {name: sql},
"optimize": [sql, ...]}`, and writes `{"before": {...}, "after": {...}}`: the dashboard's
`queries.overview` and page breakdown for the site and period (Unix seconds), the rows of every named query
(bound with `site_id`), before and after the `optimize` statements.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from app.analytics import queries, schema
from app.analytics.clickhouse import ClickHouse
from app.analytics.periods import Period


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _snapshot(gateway: ClickHouse, request: dict[str, Any]) -> dict[str, Any]:
    site_id = int(request["site_id"])
    period = Period(
        key="test",
        label="test",
        start=dt.datetime.fromtimestamp(request["start"], dt.UTC),
        end=dt.datetime.fromtimestamp(request["end"], dt.UTC),
        timezone="UTC",
        bucket="hour",
    )
    scope = queries.Scope(site_id, period)
    pages = queries.breakdown(gateway, scope, "page", limit=queries.MAX_LIMIT)
    result: dict[str, Any] = {
        "overview": queries.overview(gateway, scope),
        "pages": [{key: _jsonable(value) for key, value in row.items()} for row in pages],
    }
    for name, sql in request["queries"].items():
        rows = gateway.query(name, sql, {"site_id": site_id})
        result[name] = [{key: _jsonable(value) for key, value in row.items()} for row in rows]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare")
    prepare.add_argument("folder", type=Path)
    prepare.add_argument("--no-dedup-window", action="store_true")
    inspect = commands.add_parser("inspect")
    inspect.add_argument("folder", type=Path)
    inspect.add_argument("request", type=Path)
    inspect.add_argument("result", type=Path)
    args = parser.parse_args(argv)

    gateway = ClickHouse(f"chdb:///{args.folder.resolve()}")
    try:
        if args.command == "prepare":
            schema.migrate(gateway)
            if args.no_dedup_window:
                gateway.command(
                    "ALTER TABLE events MODIFY SETTING non_replicated_deduplication_window = 0"
                )
            return 0
        request = json.loads(args.request.read_text())
        before = _snapshot(gateway, request)
        for statement in request.get("optimize", []):
            gateway.command(statement)
        after = _snapshot(gateway, request)
        args.result.write_text(json.dumps({"before": before, "after": after}))
        return 0
    finally:
        gateway.close()


if __name__ == "__main__":
    sys.exit(main())
