"""Helpers for the account-flow tests: posting forms, reading users and tokens back."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlmodel import select

from app.models import AccountToken, User
from app.models.columns import utcnow
from app.services import Services
from tests.conftest import csrf_token, make_client, random_peer


def anonymous(services: Services) -> httpx.AsyncClient:
    """An https client from an address of its own (per-IP limits never couple two tests)."""
    return make_client(services, peer=random_peer(), scheme="https")


async def submit(
    client: httpx.AsyncClient, page: str, form: dict[str, str], action: str | None = None
) -> httpx.Response:
    """Post `form` (with the CSRF token of `page`) to `action`, by default `page` itself."""
    token = await csrf_token(client, page)
    return await client.post(action or page, data={**form, "csrf_token": token})


async def sign_up(
    client: httpx.AsyncClient, email: str, password: str, next_path: str = "/"
) -> httpx.Response:
    return await submit(
        client, "/signup", {"email": email, "password": password, "next": next_path}
    )


async def reload(services: Services, user_id: int | None) -> User:
    async with services.sessions() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def stored_user(services: Services, email: str) -> User | None:
    async with services.sessions() as session:
        return (await session.exec(select(User).where(User.email == email))).first()


async def tokens_of(services: Services, user_id: int | None) -> list[AccountToken]:
    async with services.sessions() as session:
        query = select(AccountToken).where(AccountToken.user_id == user_id)
        return list((await session.exec(query)).all())


async def expire_tokens(services: Services, user_id: int | None) -> None:
    """Move every token of the user into the past."""
    async with services.sessions() as session:
        for token in await tokens_of(services, user_id):
            token.expires_at = utcnow() - dt.timedelta(minutes=1)
            session.add(token)
        await session.commit()
