"""`ursa billing set-plan`, through click's test runner on the test app database: staff put an
organization on a plan by hand, and what the plan allows follows at once."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.accounts import api_keys
from app.models import BillingProfile
from app.services import Services
from tests.conftest import make_client
from tests.integration.helpers import run_ursa
from tests.integration.org_helpers import own_organization

pytestmark = pytest.mark.db


async def _plan(services: Services, org_id: int) -> str:
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        return (await session.exec(query)).one().plan_code


async def test_set_plan_puts_the_organization_on_it(settings, services, owner, site_domain):
    org_id = await own_organization(services, owner)
    key = (await api_keys.create_key(services.sessions, owner, "cli"))[1]
    body = {"site_id": site_domain, "metrics": ["visitors"], "date_range": "7d"}
    async with make_client(services) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        assert (await http.post("/api/v2/query", json=body)).status_code == 402  # Free: no API

        result = await run_ursa(
            settings, "billing", "set-plan", "--org", str(org_id), "--plan", "premium"
        )
        assert result.exit_code == 0, result.output
        assert result.output == f"organization {org_id} is on the Premium plan\n"
        assert await _plan(services, org_id) == "premium"
        assert (await http.post("/api/v2/query", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("org", "plan", "message"),
    [
        (None, "gold", "unknown plan 'gold'; use one of free, basic, premium, enterprise"),
        ("999999", "basic", "no organization with the id 999999"),
    ],
)
async def test_a_bad_plan_or_organization_is_one_clear_line(
    settings, services, owner, org, plan, message
):
    org_id = await own_organization(services, owner)
    result = await run_ursa(
        settings, "billing", "set-plan", "--org", org or str(org_id), "--plan", plan
    )
    assert result.exit_code == 2
    assert message in result.output
    assert await _plan(services, org_id) == "free"


async def test_set_limits_and_extend_grace(settings, services, owner):
    org_id = await own_organization(services, owner)
    org = str(org_id)
    refused = await run_ursa(settings, "billing", "set-limits", "--org", org, "--events", "5")
    assert refused.exit_code == 2
    assert "custom limits apply to Enterprise only" in refused.output
    await run_ursa(settings, "billing", "set-plan", "--org", org, "--plan", "enterprise")
    result = await run_ursa(
        settings, "billing", "set-limits", "--org", org, "--events", "5000000", "--sites", "90"
    )
    assert (result.exit_code, result.output) == (
        0,
        f"organization {org_id}: monthly_event_limit 5000000, max_sites 90\n",
    )
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
    assert (profile.custom_monthly_event_limit, profile.custom_max_sites) == (5_000_000, 90)

    extended = await run_ursa(settings, "billing", "extend-grace", "--org", org, "--days", "3")
    assert extended.exit_code == 0, extended.output
    assert extended.output.startswith(f"organization {org_id}: grace period until ")
    bad = await run_ursa(settings, "billing", "extend-grace", "--org", org, "--days", "0")
    assert bad.exit_code == 2
    assert "days must be from 1 to 366" in bad.output
