"""Organizations (teams): members, roles and invitations."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

PUBLIC_ROUTES: list[HTTPRouteHandler] = []  # no login needed
PRIVATE_ROUTES: list[HTTPRouteHandler] = []  # behind the login guard (see app.main)
