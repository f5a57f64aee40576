"""The exception tree, mapped to HTTP answers in one place (`app.main`).

AppError                 anything Ursa raises on purpose
├── ClientError          the caller's fault → 4xx
│   ├── InvalidInput     400: a value is malformed
│   ├── NotFound         404
│   └── Conflict         409: it already exists
└── Unavailable          503: a dependency (Redis buffer, ClickHouse) is down; retry later
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 500


class ClientError(AppError):
    status_code = 400


class InvalidInput(ClientError):
    status_code = 400


class NotFound(ClientError):
    status_code = 404


class Conflict(ClientError):
    status_code = 409


class Unavailable(AppError):
    status_code = 503
