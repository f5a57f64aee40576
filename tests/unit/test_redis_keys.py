"""Every Redis key family has a prefix of its own (`app.store.keys`)."""

from __future__ import annotations

import itertools

from app.settings import Settings
from app.store import keys

FAMILIES = {
    "buffer stream": Settings.model_fields["BUFFER_STREAM"].default,
    "flush lock": keys.FLUSH_LOCK,
    "flush batch": keys.FLUSH_BATCH,
    "visit": keys.VISIT,
    "engaged": keys.ENGAGED,
    "salt": keys.SALT,
    "web session": keys.WEB_SESSION,
    "user web sessions": keys.USER_WEB_SESSIONS,
    "totp step": keys.TOTP_STEP,
    "migrate lock": keys.MIGRATE_LOCK,
    "dramatiq": keys.DRAMATIQ + ":",
    "rate limit": keys.RATE_LIMIT,
    "shared cache": keys.SHARED_CACHE,
}


def test_no_family_prefix_begins_another() -> None:
    for (one, a), (other, b) in itertools.permutations(FAMILIES.items(), 2):
        assert not b.startswith(a), f"{other} ({b}) lies under {one} ({a})"


def test_retired_prefixes_are_no_current_family() -> None:
    for retired in keys.RETIRED:
        for name, prefix in FAMILIES.items():
            assert not prefix.startswith(retired), f"{name} would be dropped at migration"


def test_the_buffer_ids_hang_off_the_stream() -> None:
    stream = FAMILIES["buffer stream"]
    assert all(key.startswith(f"{stream}:") for key in keys.buffer_ids(stream))
