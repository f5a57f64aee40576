"""docs/security.md's rate-limit table lists every rule with its real subject, limit and window."""

from __future__ import annotations

import re
from pathlib import Path

from app.accounts import flows as account_flows
from app.cache import ratelimit
from app.cache.ratelimit import Rule, Scope
from app.organizations import teams as organizations
from app.sites import sharing

RATE_LIMITS_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
ROW = re.compile(
    r"^\| (user|IP|account|account\+IP|API key) \| `(\w+)` \| (\d+) / (\d+ )?(minute|hour)s? \|",
    re.M,
)
SCOPES = {
    "user": Scope.USER,
    "IP": Scope.IP,
    "account": Scope.ACCOUNT,
    "account+IP": Scope.ACCOUNT_IP,
    "API key": Scope.KEY,
}
UNIT_SECONDS = {"minute": 60, "hour": 3600}


def test_readme_lists_every_rule_as_defined():
    defined = {
        name: value
        for module in (ratelimit, organizations, sharing, account_flows)
        for name, value in vars(module).items()
        if isinstance(value, Rule)
    }
    documented = {
        name: (SCOPES[per], int(limit), int(count or 1) * UNIT_SECONDS[unit])
        for per, name, limit, count, unit in ROW.findall(RATE_LIMITS_DOC.read_text())
    }
    assert documented == {
        name: (rule.scope, rule.limit, rule.window_seconds) for name, rule in defined.items()
    }
