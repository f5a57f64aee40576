"""The internal port: token-guarded gateway calls, never routed by the public app."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from app.analytics.remote import RemoteClickHouse
from app.internal import create_internal_app


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


async def test_public_app_does_not_route_internal_paths(client):
    response = await client.post("/internal/clickhouse/query", content=b"")
    assert response.status_code in (404, 405)


def test_remote_gateway_reports_an_unreachable_instance():
    from app.analytics.clickhouse import ClickHouseError

    remote = RemoteClickHouse("http://127.0.0.1:9", "token")
    with pytest.raises(ClickHouseError, match="unreachable"):
        remote.query("t", "SELECT 1")
    remote.close()
