"""The sessions page: a user's live login sessions as rows a template only has to print."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.accounts.web_sessions import WebSession

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


@dataclass(frozen=True)
class Moment:
    """A time in the past, ready to print: "5 minutes ago", its UTC text and ISO 8601 form."""

    ago: str
    text: str
    iso: str

    @classmethod
    def of(cls, moment: float, now: float) -> Moment:
        when = dt.datetime.fromtimestamp(moment, dt.UTC)
        return cls(
            ago(moment, now), when.strftime("%Y-%m-%d %H:%M UTC"), when.strftime("%Y-%m-%dT%H:%MZ")
        )


@dataclass(frozen=True)
class SessionRow:
    public_id: str
    agent: str
    country: str
    signed_in: Moment
    last_active: Moment
    current: bool


def ago(moment: float, now: float) -> str:
    """A short human distance in the past: "just now", "5 minutes ago", "2 days ago"."""
    seconds = max(0, int(now - moment))
    for size, unit in _UNITS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def session_rows(
    sessions: list[WebSession], current: WebSession | None, now: float
) -> list[SessionRow]:
    """One row per session, the current one first (then the most recently active first)."""
    current_key = current.key if current is not None else None
    ordered = sorted(sessions, key=lambda s: (s.key != current_key, -s.last_seen))
    return [
        SessionRow(
            public_id=s.public_id,
            agent=s.agent or "Unknown browser",
            country=s.country or "Unknown",
            signed_in=Moment.of(s.created_at, now),
            last_active=Moment.of(s.last_seen, now),
            current=s.key == current_key,
        )
        for s in ordered
    ]
