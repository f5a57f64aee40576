"""Schemathesis against the Stats API's own OpenAPI schema: no request it generates gets a 5xx.

The app runs under uvicorn on a loopback port (in a thread with its own event loop, as in
production), with the site and key of a real user; every generated request names that site,
so most reach ClickHouse rather than stopping at "no such site".
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from sqlmodel import select

from app.accounts import api_keys
from app.accounts.users import create_user
from app.analytics.clickhouse.gateway import ClickHouse
from app.main import create_app
from app.models import Membership
from app.services import Services
from app.settings import Settings
from app.sites.registry import register_site
from tests.conftest import PASSWORD, free_port
from tests.integration.org_helpers import set_plan
from tests.integration.test_filtered_queries import EVENTS
from tests.integration.test_stats_api import insert_events

pytestmark = pytest.mark.db


async def _site_and_key(services: Services) -> tuple[str, str]:
    user = await create_user(
        services.sessions, f"schema-{secrets.token_hex(4)}@example.com", PASSWORD, verified=True
    )
    async with services.sessions() as session:
        membership = (
            await session.exec(select(Membership).where(Membership.user_id == user.id))
        ).one()
    domain = f"schema-{secrets.token_hex(4)}.example"
    site = await register_site(
        services.sessions, domain, "Europe/Berlin", membership.organization_id
    )
    assert site.id is not None
    await set_plan(services, membership.organization_id, "premium")  # the API's plan
    insert_events(services, site.id, EVENTS)
    _, secret = await api_keys.create_key(services.sessions, user, "schemathesis")
    await services.aclose()
    return domain, secret


@pytest.fixture(scope="module")
def live(settings: Settings, clickhouse: ClickHouse) -> Iterator[tuple[str, str, str]]:
    """(base URL, site domain, key) of a running app."""
    domain, secret = asyncio.run(_site_and_key(Services(settings, gateway=clickhouse)))
    port = free_port()
    app = create_app(settings, Services(settings, gateway=clickhouse))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", domain, secret
    server.should_exit = True
    thread.join(timeout=20)


# Up to this many requests per operation; five operations stay within a key's hourly budget.
EXAMPLES = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def test_no_generated_request_gets_a_server_error(live: tuple[str, str, str]) -> None:
    base, domain, secret = live
    loaded = schemathesis.openapi.from_url(f"{base}/api/schema/openapi.json")
    operations = []
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the schema itself is valid
        operations.append(result.ok())
    assert len(operations) == 5
    seen: list[int] = []
    for operation in operations:

        @EXAMPLES
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            if isinstance(case.body, dict):
                case.body["site_id"] = domain
            if isinstance(case.query, dict) and "site_id" in case.query:
                case.query["site_id"] = domain
            response = case.call(base_url=base, headers={"Authorization": f"Bearer {secret}"})
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            assert response.status_code != 429, "the run should stay within one key's budget"

        check()
    assert 200 in seen  # some requests got answers, not only refusals
