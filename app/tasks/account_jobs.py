"""Jobs of account flows: verification and password-reset emails.

Tokens are minted here, in the worker, never passed as message arguments.

Must not import `app.tasks.actors` (which imports this module to register its actors).
"""

from __future__ import annotations

import dramatiq

ACTORS: tuple[dramatiq.Actor, ...] = ()  # type: ignore[type-arg]
