"""Adding and managing sites: settings, embed snippet, live install status, transfer, deletion.

Owners and Admins of a site's organization manage it; Viewers may only poll its install status;
deleting a site needs its Owner. Every check goes through `app.organizations.access`
(`site_for_member`, `organization_role`); the work is done by `app.sites.registry`. A form with a
bad value is shown again with the message next to it (400/409), since a plain form POST is what
these pages use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.cache.ratelimit import CREATE_PER_USER, limited
from app.errors import ClientError, Forbidden, InvalidInput, PlanLimitReached
from app.models import Organization, Role, Site, User
from app.organizations.access import SiteAccess, organization_role, site_for_member
from app.organizations.teams import manageable_organizations
from app.routes import FORM
from app.services import Services
from app.sites import goals
from app.sites import registry as sites

NO_MANAGER_ROLE = (
    "Adding a site needs the owner or admin role in an organization. Ask an owner of your "
    "organization to add it, or to make you an admin."
)
SAVED_MESSAGES = {
    "timezone": "Time zone saved.",
    "hostnames": "Allowed hostnames saved.",
    "transfer": "Site moved to its new organization.",
    "goals": "Goals saved.",
}


class NewSiteForm(Struct):
    domain: str = ""
    timezone: str = "UTC"
    organization: int = 0


class TimezoneForm(Struct):
    timezone: str = ""


class HostnamesForm(Struct):
    hostnames: str = ""


class GoalForm(Struct):
    kind: str = ""
    value: str = ""


class GoalRemovalForm(Struct):
    goal: str = ""


class TransferForm(Struct):
    organization: int = 0


class DeleteForm(Struct):
    confirm: str = ""


# --- adding a site ---------------------------------------------------------------------------


@get("/sites/new", name="site-new")
async def new_site_page(
    services: NamedDependency[Services], user: NamedDependency[User]
) -> Template:
    return await _new_site_page(services, user, NewSiteForm())


@post("/sites", name="site-create", status_code=303, opt=limited(CREATE_PER_USER))
async def create_site(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    data: Annotated[NewSiteForm, FORM],
) -> Template | Redirect:
    organizations = await _organizations_for_new_sites(services, user)
    organization_id = data.organization or organizations[0].id or 0
    await organization_role(services, user, organization_id, at_least=Role.ADMIN)
    try:
        site = await sites.register_site(
            services.sessions, data.domain, data.timezone, organization_id
        )
    except ClientError as exc:
        upgrade = exc.upgrade_url if isinstance(exc, PlanLimitReached) else ""
        return await _new_site_page(services, user, data, str(exc), exc.status_code, upgrade)
    return Redirect(f"/{site.domain}/settings", status_code=303)


async def _new_site_page(
    services: Services,
    user: User,
    form: NewSiteForm,
    error: str = "",
    status_code: int = 200,
    upgrade_url: str = "",
) -> Template:
    context = {
        "form": form,
        "error": error,
        "upgrade_url": upgrade_url,
        "organizations": await _organizations_for_new_sites(services, user),
        "timezones": sites.timezones(),
    }
    return Template("sites/new.html", context=context, status_code=status_code)


async def _organizations_for_new_sites(services: Services, user: User) -> list[Organization]:
    """Where `user` may add a site (Owner or Admin); 403 when nowhere."""
    organizations = await manageable_organizations(services.sessions, user)
    if not organizations:
        raise Forbidden(NO_MANAGER_ROLE)
    return organizations


# --- settings --------------------------------------------------------------------------------


@get("/{domain:str}/settings", name="site-settings")
async def settings_page(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    saved: FromQuery[str] = "",
) -> Template:
    access = await site_for_member(services, user, domain, at_least=Role.ADMIN)
    return await _settings_page(services, user, access, notice=SAVED_MESSAGES.get(saved, ""))


@get("/{domain:str}/install-status", name="site-install-status")
async def install_status(
    services: NamedDependency[Services], user: NamedDependency[User], domain: FromPath[str]
) -> Template:
    site = (await site_for_member(services, user, domain)).site
    assert site.id is not None
    receiving = await sites.is_receiving_events(services.clickhouse, site.id)
    context = {"site": site, "receiving": receiving, "first": False}
    return Template("sites/install_status.html", context=context)


@post("/{domain:str}/settings/timezone", name="site-timezone", status_code=303)
async def change_timezone(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[TimezoneForm, FORM],
) -> Template | Redirect:
    def change(site: Site) -> Awaitable[object]:
        return sites.set_timezone(services.sessions, site, data.timezone)

    return await _submit(services, user, domain, "timezone", change)


@post("/{domain:str}/settings/hostnames", name="site-hostnames", status_code=303)
async def change_hostnames(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[HostnamesForm, FORM],
) -> Template | Redirect:
    def change(site: Site) -> Awaitable[object]:
        return sites.replace_allowed_hostnames(services.sessions, site.domain, data.hostnames)

    typed = {"hostnames": data.hostnames}
    return await _submit(services, user, domain, "hostnames", change, typed=typed)


@post("/{domain:str}/settings/goals", name="site-goal-add", status_code=303)
async def add_goal(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[GoalForm, FORM],
) -> Template | Redirect:
    def change(site: Site) -> Awaitable[object]:
        return goals.add_goal(services.sessions, site, data.kind, data.value)

    typed = {"goal_kind": data.kind, "goal_value": data.value}
    return await _submit(services, user, domain, "goals", change, typed=typed)


@post("/{domain:str}/settings/goals/delete", name="site-goal-remove", status_code=303)
async def remove_goal(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[GoalRemovalForm, FORM],
) -> Template | Redirect:
    def change(site: Site) -> Awaitable[object]:
        return goals.remove_goal(services.sessions, site, data.goal)

    return await _submit(services, user, domain, "goals", change)


@post("/{domain:str}/transfer", name="site-transfer", status_code=303)
async def transfer(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[TransferForm, FORM],
) -> Template | Redirect:
    async def change(site: Site) -> None:
        if not data.organization:
            raise InvalidInput("Choose the organization to move the site to.")
        await organization_role(services, user, data.organization, at_least=Role.ADMIN)
        await sites.transfer_site(services.sessions, site, data.organization)

    return await _submit(services, user, domain, "transfer", change)


@post("/{domain:str}/delete", name="site-delete", status_code=303)
async def delete(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    domain: FromPath[str],
    data: Annotated[DeleteForm, FORM],
) -> Template | Redirect:
    def change(site: Site) -> Awaitable[object]:
        return sites.delete_site(services.sessions, site, data.confirm)

    return await _submit(services, user, domain, "delete", change, at_least=Role.OWNER, done="/")


async def _submit(
    services: Services,
    user: User,
    domain: str,
    form: str,
    change: Callable[[Site], Awaitable[object]],
    *,
    at_least: Role = Role.ADMIN,
    done: str | None = None,
    typed: dict[str, str] | None = None,
) -> Template | Redirect:
    """Authorize, apply one settings form, then redirect; a bad value shows the page again.

    `typed` keeps what the user entered in the form when it is shown again with the error.
    """
    access = await site_for_member(services, user, domain, at_least=at_least)
    try:
        await change(access.site)
    except InvalidInput as exc:
        errors = {form: str(exc)}
        return await _settings_page(services, user, access, errors=errors, **(typed or {}))
    return Redirect(done or f"/{domain}/settings?saved={form}", status_code=303)


async def _settings_page(
    services: Services,
    user: User,
    access: SiteAccess,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    hostnames: str | None = None,
    goal_kind: str = "event",
    goal_value: str = "",
) -> Template:
    """The settings page; with `errors` (form name → message) it answers 400."""
    site = access.site
    organizations = await manageable_organizations(services.sessions, user)
    context: dict[str, Any] = {
        "site": site,
        "snippet": sites.embed_snippet(services.settings.BASE_URL, site.domain),
        "timezones": sites.timezones(),
        "hostnames": "\n".join(site.allowed_hostnames) if hostnames is None else hostnames,
        "targets": [org for org in organizations if org.id != site.organization_id],
        "can_delete": access.role == Role.OWNER,
        "cache_seconds": services.settings.SITE_CACHE_SECONDS,
        "goal_kind": goal_kind,
        "goal_value": goal_value,
        "notice": notice,
        "errors": errors or {},
        "first": True,
    }
    return Template("sites/settings.html", context=context, status_code=400 if errors else 200)


PUBLIC_ROUTES: list[HTTPRouteHandler] = []  # no login needed
PRIVATE_ROUTES: list[HTTPRouteHandler] = [
    new_site_page,
    create_site,
    settings_page,
    install_status,
    change_timezone,
    add_goal,
    remove_goal,
    change_hostnames,
    transfer,
    delete,
]
