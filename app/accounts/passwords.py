"""Password hashing with argon2id, and the password rules.

When the parameters (`_HASHER`) change, `needs_rehash` tells the login flow to store a new hash.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer input only costs hashing time; no real password is this long

# OWASP's first argon2id configuration (m=19 MiB, t=2, p=1; 16-byte salt, 32-byte hash), written
# out rather than taken from argon2-cffi's defaults so that a library upgrade never changes them
# silently. About 40 ms per hash on a 2-core VM, where RFC 9106's low-memory option (64 MiB, t=3,
# p=4: argon2-cffi's default) took 300-400 ms: logins and sign-ups stay cheap to serve on a small
# install and a poor target for CPU exhaustion, while every offline guess still costs an attacker
# 19 MiB. One lane, because a hash runs in one worker thread and more lanes would only compete
# with other requests for a few cores.
_HASHER = PasswordHasher(
    time_cost=2,
    memory_cost=19 * 1024,  # KiB
    parallelism=1,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt included) of a new password.

    Raise `InvalidInput` for a password that is too short or too long.
    """
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches; False (never an exception) for a wrong password or hash.

    libargon2 compares the digests in constant time.
    """
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with other parameters than today's (rehash after a login)."""
    return _HASHER.check_needs_rehash(password_hash)
