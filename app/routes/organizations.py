"""Organizations (teams): members, roles and invitations.

Every organization route checks the role with `app.organizations.access.organization_role` (404 for
a non-member, 403 below the role it needs); the rules live in `app.organizations.teams`. The
invitation landing is public (the link is the credential); accepting needs a login.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from msgspec import Struct

from app.accounts.request_auth import request_auth, rotate_session
from app.cache.ratelimit import CREATE_PER_USER, INVITATION_SEND_PER_USER, limited
from app.models import Role, User
from app.organizations import teams as orgs
from app.organizations.access import organization_role
from app.routes import FORM
from app.services import Services
from app.store.jobs import enqueue
from app.web.security_headers import AUTHENTICATED_CACHE_CONTROL

ROLES = [role.value for role in Role]


class NameForm(Struct):
    name: str = ""


class RoleForm(Struct):
    role: str = ""


class InvitationForm(Struct):
    email: str = ""
    role: str = Role.VIEWER.value


def _to_org(org_id: int) -> Redirect:
    return Redirect(f"/orgs/{org_id}", status_code=303)


@get("/orgs", name="organizations")
async def organization_list(
    services: NamedDependency[Services], user: NamedDependency[User]
) -> Template:
    found = await orgs.organizations_of(services.sessions, user)
    return Template("organizations/index.html", context={"organizations": found})


@post("/orgs", name="organization-create", status_code=303, opt=limited(CREATE_PER_USER))
async def organization_create(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[NameForm, FORM],
) -> Redirect:
    organization = await orgs.create_organization(services.sessions, user, data.name)
    assert organization.id is not None
    return _to_org(organization.id)


@get("/orgs/{org_id:int}", name="organization")
async def organization_detail(
    services: NamedDependency[Services], user: NamedDependency[User], org_id: FromPath[int]
) -> Template:
    role = await organization_role(services, user, org_id)
    page = await orgs.organization_page(services.sessions, org_id, role)
    context = {"page": page, "me": user, "roles": ROLES}
    return Template("organizations/detail.html", context=context)


@post("/orgs/{org_id:int}/name", name="organization-rename", status_code=303)
async def organization_rename(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    data: Annotated[NameForm, FORM],
) -> Redirect:
    await organization_role(services, user, org_id, at_least=Role.OWNER)
    await orgs.rename(services.sessions, org_id, data.name)
    return _to_org(org_id)


@post("/orgs/{org_id:int}/members/{user_id:int}/role", name="member-role", status_code=303)
async def member_role(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    user_id: FromPath[int],
    data: Annotated[RoleForm, FORM],
) -> Redirect:
    await organization_role(services, user, org_id, at_least=Role.OWNER)
    await orgs.change_role(services.sessions, org_id, user_id, orgs.parse_role(data.role))
    if user_id == user.id:  # their own privileges changed
        await rotate_session(request, services)
    return _to_org(org_id)


@post("/orgs/{org_id:int}/members/{user_id:int}/remove", name="member-remove", status_code=303)
async def member_remove(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    user_id: FromPath[int],
) -> Redirect:
    leaving = user_id == user.id
    await organization_role(services, user, org_id, Role.VIEWER if leaving else Role.OWNER)
    await orgs.remove_member(services.sessions, org_id, user_id)
    if not leaving:
        return _to_org(org_id)
    await rotate_session(request, services)
    return Redirect("/orgs", status_code=303)


@post(
    "/orgs/{org_id:int}/invitations",
    name="invitation-create",
    status_code=303,
    opt=limited(INVITATION_SEND_PER_USER),
)
async def invitation_create(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    data: Annotated[InvitationForm, FORM],
) -> Redirect:
    await organization_role(services, user, org_id, at_least=Role.OWNER)
    role = orgs.parse_role(data.role)
    invitation = await orgs.invite(services.sessions, org_id, user, data.email, role)
    assert invitation.id is not None
    enqueue("send_invitation", invitation.id)  # after the commit: the worker finds the row
    return _to_org(org_id)


@post(
    "/orgs/{org_id:int}/invitations/{invitation_id:int}/revoke",
    name="invitation-revoke",
    status_code=303,
)
async def invitation_revoke(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    invitation_id: FromPath[int],
) -> Redirect:
    await organization_role(services, user, org_id, at_least=Role.OWNER)
    await orgs.revoke_invitation(services.sessions, org_id, invitation_id)
    return _to_org(org_id)


@get(
    "/invitations/{token:str}",
    name="invitation",
    cache_control=AUTHENTICATED_CACHE_CONTROL,
    opt=limited(orgs.INVITATION_PER_IP),
)
async def invitation_landing(
    request: Request[Any, Any, Any], services: NamedDependency[Services], token: FromPath[str]
) -> Template:
    """Who invites whom to what; never changes anything (the Accept button POSTs)."""
    view = await orgs.invitation_view(services.sessions, token, request_auth(request).user_id)
    here = f"/invitations/{token}"
    context = {
        "view": view,
        "token": token,
        "login_url": f"/login?{urlencode({'next': here}, safe='/')}",
        "signup_url": f"/signup?{urlencode({'next': here, 'email': view.email}, safe='/@')}",
        "wrong_account": orgs.wrong_account(view.email),
    }
    status = 403 if view.audience is orgs.Audience.OTHER_ACCOUNT else 200
    return Template("organizations/invitation.html", context=context, status_code=status)


@get("/invitations/{token:str}/accept", name="invitation-accept-page")
async def invitation_accept_page(token: FromPath[str]) -> Redirect:
    """Where the login after an expired session returns from a refused Accept: the landing."""
    return Redirect(f"/invitations/{token}", status_code=303)


@post(
    "/invitations/{token:str}/accept",
    name="invitation-accept",
    status_code=303,
    opt=limited(orgs.INVITATION_PER_IP),
)
async def invitation_accept(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    user: NamedDependency[User],
    token: FromPath[str],
) -> Redirect:
    org_id = await orgs.accept_invitation(services.sessions, token, user)
    await rotate_session(request, services)  # a new membership is a privilege change
    return _to_org(org_id)


PUBLIC_ROUTES = [invitation_landing]  # no login needed
PRIVATE_ROUTES = [  # behind the login guard (see app.main)
    organization_list,
    organization_create,
    organization_detail,
    organization_rename,
    member_role,
    member_remove,
    invitation_create,
    invitation_revoke,
    invitation_accept_page,
    invitation_accept,
]
