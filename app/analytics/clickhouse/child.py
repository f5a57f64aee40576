"""A `Gateway` whose ClickHouse client lives in a child process.

A process can open one chDB directory only (the engine is a process-wide singleton). A command
that already holds one directory, such as `ursa move` reading an embedded installation, reaches
a second `chdb:///` directory through this gateway: a child process (spawned, never forked from
a process that holds an engine) opens it with `ClickHouse(dsn)` and answers calls sent over a
pipe. Errors come back as `ClickHouseError` with the child's message.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from app.analytics.clickhouse.gateway import ClickHouse, ClickHouseError, Row

STOP_SECONDS = 30.0


class ChildClickHouse:
    """The `Gateway` calls, answered by `ClickHouse(dsn)` in a child process."""

    def __init__(self, dsn: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(dsn, child_end), name="clickhouse-child", daemon=True
        )
        self._process.start()
        child_end.close()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            self._pipe.send((method, args))
            ok, value = self._pipe.recv()
        except (EOFError, OSError) as exc:
            raise ClickHouseError(f"the ClickHouse child process stopped: {exc!r}") from exc
        if not ok:
            raise ClickHouseError(value)
        return value

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        rows: list[Row] = self._call("query", name, sql, dict(params or {}))
        return rows

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int:
        inserted: int = self._call("insert", table, list(columns), [list(c) for c in data], token)
        return inserted

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._call("command", sql, dict(params or {}))

    def close(self) -> None:
        """Close the pipe: the child closes its client and ends (after a call in progress)."""
        self._pipe.close()
        self._process.join(STOP_SECONDS)


def _serve(dsn: str, pipe: Connection) -> None:
    """The child's loop: run each call on one `ClickHouse` and send back (ok, result).

    It ends when the parent closes the pipe. Ctrl-C reaches the whole process group; the
    parent handles it and closes the pipe.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gateway = ClickHouse(dsn)
    try:
        while True:
            try:
                method, args = pipe.recv()
            except EOFError:
                return
            try:
                reply = (True, getattr(gateway, method)(*args))
            except Exception as exc:  # sent to the parent, raised there
                reply = (False, str(exc))
            try:
                pipe.send(reply)
            except OSError:  # the parent closed the pipe meanwhile
                return
    finally:
        gateway.close()
