"""A person who can log in."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow


class User(SQLModel, table=True):
    """An account. `email` is stored normalised (see `app.addresses.emails.normalize_email`).

    A soft-deleted user (`deleted_at` set) keeps its row, and its email, until the deletion job
    destroys it for good.
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    email_verified_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    is_staff: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Base32 TOTP secret; set while 2FA is being turned on, in force once `totp_enabled_at` is.
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_enabled_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def has_2fa(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret is not None


class RecoveryCode(SQLModel, table=True):
    """A single-use 2FA recovery code; only its SHA-256 is stored (codes are random, 50 bits)."""

    __tablename__ = "recovery_codes"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(max_length=64)
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class AccountToken(SQLModel, table=True):
    """A single-use, expiring token mailed to a user: email verification, password reset.

    Only `token_hash` is stored (see `app.models.invitation.hash_token`). `email` is the address
    the token was mailed to: a verification link confirms that address and no other.
    """

    __tablename__ = "account_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    purpose: str = Field(max_length=32)
    email: str = Field(max_length=254)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
