"""Jobs of organizations: invitation emails (the token is minted in the worker).

Must not import `app.tasks.actors` (which imports this module to register its actors).
"""

from __future__ import annotations

import dramatiq

ACTORS: tuple[dramatiq.Actor, ...] = ()  # type: ignore[type-arg]
