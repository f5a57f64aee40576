"""`ursa users create`, through click's test runner on the test app database."""

from __future__ import annotations

import secrets

import pytest

from app.accounts.users import get_user_by_email
from tests.integration.helpers import run_ursa

pytestmark = pytest.mark.db

PASSWORD = "a long enough password"


@pytest.fixture
def email() -> str:
    return f"cli-{secrets.token_hex(4)}@example.com"


async def test_create_a_staff_user_with_the_password_typed_twice(settings, services, email):
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    result = await run_ursa(settings, "users", "create", "--email", email, "--staff", typed=typed)
    assert result.exit_code == 0, result.output
    user = await get_user_by_email(services.sessions, email)
    assert user is not None
    assert result.output.endswith(f"created staff user {email} (id {user.id})\n")
    assert PASSWORD not in result.output
    assert user.is_staff
    assert user.email_verified_at is not None


async def test_create_with_the_password_from_the_environment(settings, services, email):
    result = await run_ursa(
        settings, "users", "create", "--email", email.upper(), password=PASSWORD
    )
    assert result.exit_code == 0, result.output
    user = await get_user_by_email(services.sessions, email)
    assert user is not None
    assert not user.is_staff
    assert result.output == f"created user {email} (id {user.id})\n"


async def test_clear_errors_for_a_taken_email_or_a_short_password(settings, email):
    create = ("users", "create", "--email", email)
    assert (await run_ursa(settings, *create, password=PASSWORD)).exit_code == 0
    taken = await run_ursa(settings, *create, password=PASSWORD)
    assert (taken.exit_code, taken.output) == (
        2,
        f"error: a user with the email {email} already exists\n",
    )
    other = ("users", "create", "--email", f"other-{email}")
    short = await run_ursa(settings, *other, password="short")
    assert (short.exit_code, short.output) == (
        2,
        "error: the password must have at least 10 characters\n",
    )
    mismatch = await run_ursa(settings, *other, typed=f"{PASSWORD}\nsomething else\n\n")
    assert mismatch.exit_code != 0
    assert "do not match" in mismatch.output
