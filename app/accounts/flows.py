"""Account flows: sign-up, email verification, password reset, password and email changes.

Nothing here tells a stranger whether an address has an account: every answer is the same for
any address, and only the owner of a live account may get an email. Requests never send email:
they queue the jobs of `app.tasks.account_jobs`, which mint the tokens.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.accounts.login import lockout_lifted, reauthenticate
from app.accounts.request_auth import request_auth, rotate_session, safe_next
from app.accounts.tokens import (
    CHANGE_EMAIL,
    RESET_PASSWORD,
    VERIFY_EMAIL,
    OpenToken,
    open_token,
    use_up,
)
from app.accounts.users import (
    create_user,
    get_user_by_email,
    hash_in_thread,
    store_password_hash,
)
from app.addresses.emails import normalize_email
from app.cache.ratelimit import RESET_PER_ACCOUNT, Rule, Scope
from app.errors import Conflict, Forbidden, InvalidInput
from app.models import AccountToken, Invitation, User
from app.models.columns import utcnow
from app.services import Services
from app.store.jobs import enqueue

# Unrequested emails to one address (sign-up attempts on it, verification resends), skipped
# silently beyond the cap: a 429 there would only ever hit existing accounts.
ACCOUNT_MAIL = Rule("account-mail:account", Scope.ACCOUNT, limit=3, window_seconds=60 * 60)

EMAIL_LINKS = (VERIFY_EMAIL, CHANGE_EMAIL)
RESET_LINKS = (RESET_PASSWORD,)

SIGNUP_CLOSED = (
    "Sign-up is by invitation only on this Ursa. Use the email address your invitation was "
    "sent to, or ask someone in your organization to invite you."
)
WRONG_PASSWORD = "Your current password is not correct. Nothing was changed."  # noqa: S105
SAME_EMAIL = "That is already your email address."
ADDRESS_TAKEN = "That email address now belongs to another account. Nothing was changed."


def _id(user: User) -> int:
    assert user.id is not None, "a stored user has an id"
    return user.id


# --- sign-up and verification -----------------------------------------------------------------


async def sign_up(services: Services, email: str, password: str, next_path: str = "/") -> str:
    """Create an unverified account and queue its verification email; return the address.

    A taken address gets the same return ("check your inbox"), and its owner an email instead:
    "someone tried to sign up with your address; log in or reset your password" (or, while
    unverified, a new verification link). Both paths hash the password once (`create_user`
    hashes before its INSERT fails), so timing tells nothing either. Raise `InvalidInput` for a
    bad address or password, `Forbidden` when `INVITE_ONLY` is set and the address has no open
    invitation (which is itself accepted through the organizations' invite link).
    """
    address = normalize_email(email)
    if services.settings.INVITE_ONLY and not await has_open_invitation(services, address):
        raise Forbidden(SIGNUP_CLOSED)
    try:
        user = await create_user(services.sessions, address, password)
    except Conflict:
        await _tell_owner(services, address, next_path=next_path)
    else:
        enqueue("send_verification", _id(user), safe_next(next_path))
    return address


async def has_open_invitation(services: Services, address: str) -> bool:
    """Whether an unaccepted, unexpired invitation to `address` (normalised) exists."""
    query = select(Invitation.id).where(
        func.lower(Invitation.email) == address,
        col(Invitation.accepted_at).is_(None),
        col(Invitation.expires_at) > utcnow(),
    )
    async with services.sessions() as session:
        return (await session.exec(query)).first() is not None


async def resend_verification(services: Services, email: str) -> str:
    """Queue a new verification link if `email` is a live, unverified account."""
    address = normalize_email(email)
    await _tell_owner(services, address, only_unverified=True)
    return address


async def _tell_owner(
    services: Services, address: str, *, only_unverified: bool = False, next_path: str = "/"
) -> None:
    """Email the account of `address`: a verification link while unverified, else (unless
    `only_unverified`) a note that it already has an account. Capped by `ACCOUNT_MAIL`."""
    user = await get_user_by_email(services.sessions, address)
    if user is None or user.deleted_at is not None:
        return
    if only_unverified and user.email_verified_at is not None:
        return
    if not (await services.limiter.hit(ACCOUNT_MAIL, address)).allowed:
        return
    if user.email_verified_at is None:
        enqueue("send_verification", _id(user), safe_next(next_path))
    else:
        enqueue("send_signup_existing", _id(user))


async def check_link(services: Services, token: str, purposes: tuple[str, ...]) -> AccountToken:
    """The token of a link, for a page that only shows it (GET): no state changes.

    Raise `BadLink` (unknown) or `LinkGone` (used, expired).
    """
    async with services.sessions() as session:
        return (await open_token(session, token, purposes)).token


async def confirm_email(services: Services, token: str) -> OpenToken:
    """Use a verification or email-change link: the address is confirmed (and, for a change,
    becomes the account's email). `Conflict` if the new address was claimed meanwhile."""
    try:
        async with services.sessions() as session, session.begin():
            found = await open_token(session, token, EMAIL_LINKS)
            user = found.user
            previous = user.email
            if found.token.purpose == CHANGE_EMAIL:
                taken = select(User.id).where(User.email == found.token.email)
                if (await session.exec(taken)).first() is not None:
                    raise Conflict(ADDRESS_TAKEN)
                user.email, user.email_verified_at = found.token.email, None
            user.email_verified_at = user.email_verified_at or utcnow()
            session.add(user)
            await use_up(session, found.token)
    except IntegrityError:  # the address was claimed between our check and the UPDATE
        raise Conflict(ADDRESS_TAKEN) from None
    if previous != user.email:  # the old address hears of it, in case it was not its owner
        enqueue("send_email_changed", previous, user.email)
    return found


# --- password reset ---------------------------------------------------------------------------


async def request_reset(services: Services, email: str) -> str:
    """Queue a reset link if `email` is a live account; the same return for any address.

    The caller enforces the per-IP limit; the per-address one is counted here.
    """
    address = normalize_email(email)
    await services.limiter.enforce(RESET_PER_ACCOUNT, address)
    user = await get_user_by_email(services.sessions, address)
    if user is not None and user.deleted_at is None:
        enqueue("send_password_reset", _id(user))
    return address


async def reset_password(services: Services, token: str, new_password: str) -> User:
    """Set a new password through a reset link.

    The link proves the mailbox, so the email counts as verified. Every session of the user
    ends, the account's lockout is lifted (the old password is worthless now), and the
    "password changed" notice is queued. Raise `BadLink` for a bad link
    (checked first) and `InvalidInput` for a password that breaks the rules.
    """
    await check_link(services, token, RESET_LINKS)
    password_hash = await hash_in_thread(new_password)
    async with services.sessions() as session, session.begin():
        found = await open_token(session, token, RESET_LINKS)
        user = found.user
        user.password_hash = password_hash
        user.email_verified_at = user.email_verified_at or utcnow()
        session.add(user)
        await use_up(session, found.token)
    await services.web_sessions.revoke_all(_id(user))
    await lockout_lifted(services, user.email)
    enqueue("send_password_changed", _id(user))
    return user


# --- account settings (logged in) -------------------------------------------------------------


async def check_current_password(
    services: Services, user: User, password: str, client: str
) -> None:
    """Raise `InvalidInput` unless `password` is the user's; a wrong one is a failed login."""
    await reauthenticate(services, user, password, WRONG_PASSWORD, client)


async def change_password(
    request: Request[Any, Any, Any],
    services: Services,
    user: User,
    current: str,
    new: str,
    *,
    end_other_sessions: bool,
) -> None:
    """Replace the password of the logged-in `user`, who must give the current one.

    Other sessions end when asked; the current one always gets a new id. Queues the notice.
    """
    await check_current_password(services, user, current, services.limiter.client_address(request))
    await store_password_hash(services.sessions, user, await hash_in_thread(new))
    if end_other_sessions:
        await services.web_sessions.revoke_all(_id(user), keep=request_auth(request).session)
    await rotate_session(request, services)
    enqueue("send_password_changed", _id(user))


async def request_email_change(
    services: Services, user: User, current_password: str, new_email: str, client: str
) -> str:
    """Queue a confirmation link to `new_email`; the email changes only when it is used.

    If the address already belongs to another account the answer is the same, but nothing is
    sent: its owner did not ask for anything, and an email there would let a logged-in user
    mail-bomb any registered address. The requester, who cannot read that mailbox, learns
    nothing; someone who can and gets no email knows the address is theirs anyway. An address
    claimed between the request and the click makes the link refused (409).
    """
    address = normalize_email(new_email)
    await check_current_password(services, user, current_password, client)
    if address == user.email:
        raise InvalidInput(SAME_EMAIL)
    if await get_user_by_email(services.sessions, address) is None:
        enqueue("send_email_change", _id(user), address)
    return address
