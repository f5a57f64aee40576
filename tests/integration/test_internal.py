"""The internal port: token-guarded gateway calls, never routed by the public app."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest

from app.analytics.clickhouse.remote import RemoteClickHouse
from app.server.internal_app import create_internal_app


@pytest.fixture
async def internal(services):
    transport = httpx.ASGITransport(app=create_internal_app(services))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as http:
        yield http


def _auth(services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.settings.INTERNAL_TOKEN}"}


async def test_calls_need_the_token(internal, services):
    body = msgspec.msgpack.encode({"name": "t", "sql": "SELECT 1 AS one", "params": {}})
    assert (await internal.post("/internal/clickhouse/query", content=body)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    response = await internal.post("/internal/clickhouse/query", content=body, headers=wrong)
    assert response.status_code == 401
    ok = await internal.post("/internal/clickhouse/query", content=body, headers=_auth(services))
    assert ok.status_code == 200
    assert msgspec.msgpack.decode(ok.content) == [{"one": 1}]


async def test_bad_calls_are_client_errors(internal, services):
    garbage = await internal.post(
        "/internal/clickhouse/query", content=b"\xc1\xc1", headers=_auth(services)
    )
    assert garbage.status_code == 400
    failing = msgspec.msgpack.encode({"name": "t", "sql": "SELECT nope FROM nowhere"})
    response = await internal.post(
        "/internal/clickhouse/query", content=failing, headers=_auth(services)
    )
    assert response.status_code == 502
    assert "nowhere" in msgspec.msgpack.decode(response.content)


async def test_inserts_reach_the_gateway_with_their_types(internal, services):
    table = f"internal_{uuid.uuid4().hex[:8]}"
    services.clickhouse.command(
        f"CREATE TABLE {table} (id UInt64, name LowCardinality(String), "
        "props Map(LowCardinality(String), String), revenue Decimal64(3), "
        "timing Nullable(UInt32)) ENGINE = MergeTree ORDER BY id"
    )
    columns = ["id", "name", "props", "revenue", "timing"]
    data = [[1, 2], ["a", "b"], [{}, {"k": "v"}], [Decimal(0), Decimal("1.5")], [None, 3]]
    body = msgspec.msgpack.encode(  # as RemoteClickHouse sends it (Decimals as strings)
        {"table": table, "columns": columns, "data": data, "token": "t"}
    )
    response = await internal.post(
        "/internal/clickhouse/insert", content=body, headers=_auth(services)
    )
    assert response.status_code == 200
    assert msgspec.msgpack.decode(response.content) == 2
    rows = services.clickhouse.query("test_internal_rows", f"SELECT * FROM {table} ORDER BY id")
    services.clickhouse.command(f"DROP TABLE {table}")
    assert rows == [
        {"id": 1, "name": "a", "props": {}, "revenue": Decimal("0.000"), "timing": None},
        {"id": 2, "name": "b", "props": {"k": "v"}, "revenue": Decimal("1.500"), "timing": 3},
    ]


async def test_public_app_does_not_route_internal_paths(client):
    response = await client.post("/internal/clickhouse/query", content=b"")
    assert response.status_code in (404, 405)


def test_remote_gateway_reports_an_unreachable_instance():
    from app.analytics.clickhouse.gateway import ClickHouseError

    remote = RemoteClickHouse("http://127.0.0.1:9", "token")
    with pytest.raises(ClickHouseError, match="unreachable"):
        remote.query("t", "SELECT 1")
    remote.close()
