"""Deletion jobs: a site's ClickHouse rows, and accounts whose 72-hour grace period has passed.

Must not import `app.tasks.actors` (which imports this module to register its actors).
"""

from __future__ import annotations

import dramatiq

ACTORS: tuple[dramatiq.Actor, ...] = ()  # type: ignore[type-arg]
