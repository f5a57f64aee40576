"""Jobs of organizations: invitation emails (the token is minted in the worker).

The message names an invitation id, never a usable link: the worker mints a fresh token and
stores its hash on the invitation (`app.organizations.teams.reissue_invitation`), so a retried job
sends a new link and the undelivered one stops working.
"""

from __future__ import annotations

import dramatiq

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.organizations.teams import reissue_invitation
from app.tasks.context import current, run_async
from app.tasks.mailing import deliver, email_actor


@email_actor
def send_invitation(invitation_id: int) -> None:
    """Email the invitation's link; nothing when it was revoked, accepted or expired meanwhile."""
    found = run_async(lambda services: reissue_invitation(services.sessions, invitation_id))
    if found is None:
        return
    settings = current().settings
    context = {
        "accept_url": f"{settings.BASE_URL}/invitations/{found.token}",
        "organization_name": found.organization_name,
        "inviter_email": found.inviter_email,
        "role": found.role.value,
        "expires": found.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    deliver("invitation", found.to, context)


ACTORS: tuple[dramatiq.Actor, ...] = (send_invitation,)  # type: ignore[type-arg]
