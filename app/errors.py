"""The exception tree, mapped to HTTP answers in one place (`app.main`).

AppError                 anything Ursa raises on purpose
├── ClientError          the caller's fault → 4xx
│   ├── InvalidInput     400: a value is malformed
│   ├── Unauthorized     401: no valid credential (a Stats API key unknown or revoked)
│   ├── PlanLimitReached 402: the organization's plan does not allow it; carries the plan
│   │                    and the link to upgrade (`app.billing.entitlements`)
│   ├── Forbidden        403: logged in, but the role is too low
│   ├── NotFound         404
│   ├── Conflict         409: it already exists
│   └── RateLimited      429: too many attempts; carries `retry_after` (seconds)
└── Unavailable          503: a dependency (Redis buffer, ClickHouse) is down; retry later
"""

from __future__ import annotations

import math


class AppError(Exception):
    status_code = 500


class ClientError(AppError):
    status_code = 400


class InvalidInput(ClientError):
    status_code = 400


class Unauthorized(ClientError):
    status_code = 401


class PlanLimitReached(ClientError):
    status_code = 402

    def __init__(self, message: str, plan_code: str, upgrade_url: str) -> None:
        super().__init__(message)
        self.plan_code = plan_code
        self.upgrade_url = upgrade_url


class Forbidden(ClientError):
    status_code = 403


class NotFound(ClientError):
    status_code = 404


class Conflict(ClientError):
    status_code = 409


class RateLimited(ClientError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        minutes = math.ceil(retry_after / 60)
        super().__init__(
            f"Too many attempts — try again in {minutes} minute{'' if minutes == 1 else 's'}"
        )
        self.retry_after = retry_after


class Unavailable(AppError):
    status_code = 503
