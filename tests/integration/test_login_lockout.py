"""The account lockout, as a table of cases: what counts, and who a locked account still lets in.

Each case is a sequence of login attempts, each from a fresh browser at a named address, with
the status it must get: 303 logged in, 400 wrong password, 429 refused by a limit. Addresses and
unknown accounts are new for every case, so cases never share a counter.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar

from app.cache.ratelimit import LOGIN_PER_ACCOUNT, LOGIN_PER_IP
from app.main import create_app
from tests.conftest import PASSWORD, log_in, new_user

pytestmark = pytest.mark.db

WRONG = "not the password of this account"
OWNER = "owner"  # the account's own email; any other label names an account that does not exist
LIMIT = LOGIN_PER_ACCOUNT.limit


@dataclass(frozen=True)
class Attempt:
    address: str  # a label: the same label is the same client address within a case
    password: str
    status: int
    email: str = OWNER


def failures(address: str, count: int = LIMIT, email: str = OWNER) -> list[Attempt]:
    return [Attempt(address, WRONG, 400, email) for _ in range(count)]


def spread_failures(count: int = LIMIT, email: str = OWNER) -> list[Attempt]:
    """One wrong password from each of `count` addresses, `far-0` to `far-<count - 1>`."""
    return [Attempt(f"far-{n}", WRONG, 400, email) for n in range(count)]


CASES = {
    "successful logins never lock the account": [Attempt("A", PASSWORD, 303)] * (LIMIT + 2),
    "the failing address is refused even the right password": [
        *failures("A"),
        Attempt("A", PASSWORD, 429),
    ],
    "an address without failures gets in with the right password": [
        *failures("A"),
        Attempt("B", PASSWORD, 303),
    ],
    "an address without failures still gets a wrong password answered as such": [
        *failures("A"),
        Attempt("B", WRONG, 400),
        Attempt("B", PASSWORD, 429),  # now it has failed too
        Attempt("C", PASSWORD, 303),
    ],
    "a success resets the account's count": [
        *failures("A", LIMIT - 1),
        Attempt("A", PASSWORD, 303),
        *failures("A", LIMIT - 1),
        Attempt("A", PASSWORD, 303),
    ],
    "a success from another address resets it for the failing one too": [
        *failures("A"),
        Attempt("B", PASSWORD, 303),
        Attempt("A", PASSWORD, 303),
    ],
    "failures spread over many addresses reach the account's limit": [
        *spread_failures(),
        Attempt("far-3", PASSWORD, 429),
        Attempt("far-9", PASSWORD, 429),
        Attempt("near", PASSWORD, 303),
    ],
    "below the limit a failing address may still log in": [
        *failures("A", LIMIT - 1),
        Attempt("A", PASSWORD, 303),
    ],
    "the per-address limit still applies, whatever the account": [
        *(Attempt("A", WRONG, 400, f"stranger-{n}") for n in range(LOGIN_PER_IP.limit)),
        Attempt("A", PASSWORD, 429),
        Attempt("B", PASSWORD, 303),
    ],
    "an unknown email is counted like an account": [
        *failures("A", email="stranger"),
        Attempt("A", WRONG, 429, "stranger"),
        Attempt("B", WRONG, 400, "stranger"),
        Attempt("B", WRONG, 429, "stranger"),
    ],
    "an unknown email's lockout leaves the other accounts alone": [
        *failures("A", email="stranger"),
        Attempt("A", PASSWORD, 303),
    ],
}


_CASE_NUMBERS = itertools.count()


class Addresses:
    """Client addresses for a case's labels: a new one per label, never one another case used."""

    def __init__(self) -> None:
        self._prefix = f"198.19.{next(_CASE_NUMBERS)}"
        self._by_label: dict[str, str] = {}

    def __getitem__(self, label: str) -> str:
        if label not in self._by_label:
            self._by_label[label] = f"{self._prefix}.{len(self._by_label) + 1}"
        return self._by_label[label]


async def attempt(app: Litestar, peer: str, email: str, password: str) -> int:
    """One login from a browser of its own (no cookies) at `peer`."""
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        return (await log_in(http, email, password)).status_code


@pytest.mark.parametrize("attempts", CASES.values(), ids=CASES.keys())
async def test_lockout(services, attempts: list[Attempt]):
    app, owner = create_app(services.settings, services), await new_user(services)
    addresses, token = Addresses(), secrets.token_hex(4)
    emails = {OWNER: owner.email}
    statuses = []
    for step in attempts:
        email = emails.setdefault(step.email, f"{step.email}-{token}@example.com")
        statuses.append(await attempt(app, addresses[step.address], email, step.password))
    assert statuses == [step.status for step in attempts]
