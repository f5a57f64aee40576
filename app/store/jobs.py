"""`enqueue`: the one way code below `app.tasks` starts a job, on the durable Redis's queues.

Actor modules sit above the domain (an actor is a thin wrapper around a domain function), so
domain code and routes never import them: they name the actor, and the broker, which declares
every actor of `app.tasks.registry` at start-up, finds it.
"""

from __future__ import annotations

import dramatiq


def enqueue(actor_name: str, *args: object) -> None:
    """Queue one message for the actor named `actor_name` with `args` (JSON-encodable)."""
    dramatiq.get_broker().get_actor(actor_name).send(*args)
