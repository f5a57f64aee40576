"""argon2id password hashes and the password rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from app.accounts.passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password
from app.errors import InvalidInput

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def test_hashes_are_argon2id_with_our_parameters_and_a_salt(stored):
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hash_password(PASSWORD) != stored


def test_only_the_right_password_verifies(stored):
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD.upper())
    assert not verify_password(stored, "")


@pytest.mark.parametrize("garbage", ["", "plain text", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy"])
def test_a_malformed_hash_verifies_nothing(garbage):
    assert not verify_password(garbage, PASSWORD)


def test_non_ascii_passwords():
    unicode_hash = hash_password("pässwörd–ünïcode")
    assert verify_password(unicode_hash, "pässwörd–ünïcode")
    assert not verify_password(unicode_hash, "passwordunicode")


def test_hashes_with_other_parameters_need_a_rehash(stored):
    assert not needs_rehash(stored)
    older = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    assert verify_password(older, PASSWORD)
    assert needs_rehash(older)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x" * (MIN_LENGTH - 1), "at least 10 characters"),
        ("", "at least 10 characters"),
        ("x" * 1025, "at most 1024 characters"),
    ],
)
def test_unacceptable_passwords_are_refused(password, message):
    with pytest.raises(InvalidInput, match=message):
        hash_password(password)


def test_the_shortest_acceptable_password():
    assert verify_password(hash_password("x" * MIN_LENGTH), "x" * MIN_LENGTH)
