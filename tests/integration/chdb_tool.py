"""Open an embedded ClickHouse (chDB) directory in a process of its own, for crash tests.

One chDB directory can be open in one process only, and a test process may already hold
another one, so tests reach the worker's directory through this script:

    python tests/integration/chdb_tool.py prepare DIR [--no-dedup-window]
    python tests/integration/chdb_tool.py inspect DIR REQUEST.json RESULT.json
    python tests/integration/chdb_tool.py serve DIR PORT

`prepare` applies the ClickHouse migrations; `--no-dedup-window` then turns off the events
table's insert deduplication (what a plain MergeTree does), to show that a test can fail.

`inspect` reads a JSON request `{"site_id", "start", "end", "queries": {name: sql},
"optimize": [sql, ...]}`, and writes `{"before": {...}, "after": {...}}`: the dashboard's
`stats.overview` and page breakdown for the site and period (Unix seconds), the rows of every named query
(bound with `site_id`), before and after the `optimize` statements.

`serve` answers the internal app's ClickHouse calls (`/internal/clickhouse/*`, as a running
`ursa serve` does for its HTTP helpers and CLI commands) on 127.0.0.1:PORT until SIGTERM, with
settings (REDIS_URL, INTERNAL_TOKEN, ...) from the environment: a ClickHouse that a worker
reaches over HTTP, through a proxy a test can pause.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.queries import stats
from app.analytics.queries.periods import Period
from app.server.internal_app import create_internal_app
from app.services import Services
from app.settings import Settings


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
        interval="hour",
        now=dt.datetime.fromtimestamp(request["end"], dt.UTC),
    )
    scope = stats.Scope(site_id, period)
    pages = stats.breakdown(gateway, scope, "page", limit=stats.MAX_LIMIT)
    result: dict[str, Any] = {
        "overview": stats.overview(gateway, scope),
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
    serve = commands.add_parser("serve")
    serve.add_argument("folder", type=Path)
    serve.add_argument("port", type=int)
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
        if args.command == "serve":
            services = Services(Settings().with_secrets(), gateway)
            # uvicorn raises the signal it stopped on again once it has shut down: with a
            # handler of ours that does nothing, chDB is then closed and the exit status is 0.
            signal.signal(signal.SIGTERM, lambda *_: None)
            uvicorn.run(
                create_internal_app(services), host="127.0.0.1", port=args.port, access_log=False
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
