"""Every Redis key family of Ursa, on the side it lives on.

Each family has a prefix of its own, and no prefix begins another family's (checked by
`tests/unit/test_redis_keys.py`), so a `SCAN` for one family never meets another.

The durable Redis (`REDIS_URL`, `noeviction`): losing a key there loses events or logs people
out. The cache Redis (`CACHE_REDIS_URL`, else `REDIS_URL`): every key has a TTL, and an evicted
one is recomputed.
"""

from __future__ import annotations

# ---- the durable Redis ------------------------------------------------------------------
# The event buffer is the stream `Settings.BUFFER_STREAM` (default `ursa:events`) with the
# consumer group `BUFFER_GROUP`; its recent event ids hang off the stream's own name.
BUFFER_GROUP = "flushers"
FLUSH_LOCK = "ursa:flush:lock"  # the lease of the one flusher at a time
FLUSH_BATCH = "ursa:flush:batch"  # the batch being written (its range and insert token)
VISIT = "ursa:visit:"  # + "<site id>:<visitor id>": the open visit of a visitor
ENGAGED = "ursa:engaged:"  # + "<site id>:<visitor id>": their deepest scroll per page (a hash)
SALT = "ursa:salt:"  # + "<day>": the daily salt of visitor ids
WEB_SESSION = "ursa:web-session:"  # + the SHA-256 of a login cookie's token
USER_WEB_SESSIONS = "ursa:user-web-sessions:"  # + "<user id>": the user's login sessions
TOTP_STEP = "ursa:totp-step:"  # + "<user id>": the last 2FA time step used
MIGRATE_LOCK = "ursa:lock:migrate"
DRAMATIQ = "dramatiq"  # the job broker's namespace (its default)

# ---- the cache Redis --------------------------------------------------------------------
RATE_LIMIT = "ursa:rl:"  # + "<rule>:<HMAC of the subject>"
SHARED_CACHE = "ursa:cache:"  # + "<cache name>:<parts>"
CAPACITY = "ursa:capacity:"  # + "<organization id>": "1" collecting, "0" refusing new events
REFUSED = "ursa:refused:"  # + "<organization id>": events refused, not yet stored by metering

# Families of keys written by earlier releases, deleted by `ursa migrate` (they would expire
# on their own): logins and open visits were both kept under `ursa:session:`.
RETIRED = ("ursa:session:", "ursa:user-sessions:")


def buffer_ids(stream: str) -> tuple[str, str]:
    """The set and the list of recent event ids of the buffer stream `stream`."""
    return f"{stream}:ids", f"{stream}:ids:order"
