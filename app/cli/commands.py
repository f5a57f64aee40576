"""The `ursa` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.analytics.queries.periods import PERIODS
from app.cli.common import guarded, load_settings
from app.observability import logging as observability_logging
from app.settings import Settings

if TYPE_CHECKING:
    from app.cli.backup import Manifest
    from app.db import SessionMaker
    from app.models import Site

log = logging.getLogger(__name__)


class _Commands(click.Group):
    """The commands of `ursa`. `move` lives in its own module, imported when `move` is named
    (or listed): its imports take seconds, which `ursa serve` would wait for before its first
    line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "move"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "move":
            from app.cli.move import move_command

            return move_command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
def main() -> None:
    """Ursa: privacy-friendly web analytics."""


@main.command()
def serve() -> None:
    """Run everything in one process on the embedded defaults (Ctrl-C stops in order)."""
    settings = Settings()
    # Loading the app's modules takes seconds: say so first, where `ursa serve` logs.
    observability_logging.configure_logging(settings.LOG_LEVEL, "stdout")
    log.info("loading Ursa (data in %s)…", settings.data_dir)
    from app.server.startup import keep_files_private

    keep_files_private(settings)  # before anything is created
    from app.server.run import serve as run

    guarded(lambda: run(settings))


@main.command()
def web() -> None:
    """Run the web process (distributed mode)."""
    from app.server.embedded_redis import require_redis
    from app.server.run import run_event_loop, run_http, web_services

    def run() -> int:
        settings = load_settings().with_secrets()
        require_redis(settings)
        services = web_services(settings, None, "ursa-web")
        return run_event_loop(run_http(settings, services))

    guarded(run)


@main.command()
def worker() -> None:
    """Run a Dramatiq worker process (distributed mode)."""

    def run() -> int:
        import dramatiq

        from app.server.embedded_redis import require_redis
        from app.server.startup import configure_logging
        from app.server.telemetry import setup_telemetry
        from app.services import Services
        from app.tasks import context
        from app.tasks.registry import setup_broker

        settings = load_settings().with_secrets()
        require_redis(settings)
        configure_logging(settings.LOG_LEVEL, "stdout")
        # Before the broker: Sentry hooks brokers.
        setup_telemetry(settings, "ursa-worker")
        services = Services(settings)
        broker = setup_broker(settings.REDIS_URL)
        context.bind(services)
        process = dramatiq.Worker(broker, worker_threads=settings.WORKER_THREADS)
        process.start()
        probes: dict[str, Callable[[], object]] = {
            "redis": services.sync_redis.ping,
            "clickhouse": lambda: services.clickhouse.query("watchdog", "SELECT 1"),
        }
        try:
            return _supervised(settings, probes)
        finally:
            process.stop()
            broker.close()
            services.close_sync()

    guarded(run)


@main.command()
def scheduler() -> None:
    """Run the scheduler that enqueues periodic jobs (distributed mode, one replica)."""

    def run() -> int:
        from app.server.embedded_redis import require_redis
        from app.server.startup import configure_logging
        from app.server.telemetry import setup_telemetry
        from app.tasks.registry import setup_broker
        from app.tasks.schedule import make_scheduler

        settings = load_settings().with_secrets()
        require_redis(settings)
        configure_logging(settings.LOG_LEVEL, "stdout")
        setup_telemetry(settings, "ursa-scheduler")
        broker = setup_broker(settings.REDIS_URL)
        periodic = make_scheduler(settings.FLUSH_INTERVAL_SECONDS)
        periodic.start()
        try:  # the scheduler enqueues through the broker's Redis client: probe that one
            return _supervised(settings, {"redis": broker.client.ping})
        finally:
            periodic.shutdown(wait=True)
            broker.close()

    guarded(run)


def _supervised(settings: Settings, probes: dict[str, Callable[[], object]]) -> int:
    """Serve `/metrics` and the health checks, and watch `probes`, until SIGINT or SIGTERM (0)
    or until a dependency stays down past `WORKER_UNHEALTHY_EXIT_SECONDS` (exit code 3)."""
    from app.server.metrics_server import MetricsServer
    from app.tasks.watchdog import UNHEALTHY_EXIT_CODE, Watchdog, supervise

    watchdog = Watchdog(probes, settings.WORKER_UNHEALTHY_EXIT_SECONDS)
    metrics = MetricsServer(
        settings.REDIS_URL,
        settings.BUFFER_STREAM,
        settings.METRICS_HOST,
        settings.METRICS_PORT,
        watchdog,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # as PID 1 in a container too
        signal.signal(sig, lambda *_: stop.set())
    try:
        failing = supervise(stop, watchdog)
    finally:
        metrics.close()
    return UNHEALTHY_EXIT_CODE if failing else 0


@main.command()
def migrate() -> None:
    """Apply app-database and ClickHouse migrations."""

    def run() -> int:
        from app.analytics.clickhouse import schema
        from app.server.instance import open_gateway
        from app.server.migrate import migrate_all, migrate_app_db

        settings = load_settings().with_secrets()
        gateway = open_gateway(settings)
        try:
            if settings.REDIS_URL:
                migrate_all(settings, gateway)
            else:  # no shared Redis to lock: this process is the only one
                migrate_app_db(settings)
                schema.migrate(gateway, cluster=settings.CLICKHOUSE_CLUSTER)
        finally:
            gateway.close()
        click.echo("migrations applied")
        return 0

    guarded(run)


@main.group()
def sites() -> None:
    """Manage sites."""


def _with_db(action: Callable[[Any], Any]) -> Any:
    """Run an async action with a session maker on a migrated app database."""
    from app.db import make_engine, make_sessionmaker
    from app.server.migrate import migrate_app_db

    settings = load_settings()
    migrate_app_db(settings)

    async def go() -> Any:
        engine = make_engine(settings.database_url)
        try:
            return await action(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@sites.command("add")
@click.argument("domain")
@click.option("--timezone", default="UTC", show_default=True, help="IANA timezone of the site.")
@click.option(
    "--owner",
    metavar="EMAIL",
    help="Put the site in an organization this user owns or administers (first by name).",
)
def sites_add(domain: str, timezone: str, owner: str | None) -> None:
    """Register a site by its domain."""
    from app.sites.registry import add_site, register_site, site_owner_organization

    async def add(sessions: SessionMaker) -> Site:
        if owner is None:  # no organization: only the CLI and ingestion know the site
            return await add_site(sessions, domain, timezone)
        organization_id = await site_owner_organization(sessions, owner)
        return await register_site(sessions, domain, timezone, organization_id, within_plan=False)

    def run() -> int:
        site = _with_db(add)
        base = load_settings().BASE_URL
        click.echo(f"added {site.domain} (id {site.id}). Add this to its pages:\n")
        click.echo(f'<script defer data-domain="{site.domain}" src="{base}/js/script.js"></script>')
        return 0

    guarded(run)


@sites.command("list")
def sites_list() -> None:
    """List registered sites."""
    from app.sites.registry import list_sites

    def run() -> int:
        for site in _with_db(list_sites):
            click.echo(f"{site.id}\t{site.domain}\t{site.timezone}")
        return 0

    guarded(run)


@sites.command("hostnames")
@click.argument("domain")
@click.option("--add", multiple=True, metavar="HOSTNAME", help="Allow a hostname (repeatable).")
@click.option("--remove", multiple=True, metavar="HOSTNAME", help="Unlist a hostname (repeatable).")
@click.option("--clear", is_flag=True, help="Empty the list first (any hostname allowed).")
def sites_hostnames(
    domain: str, add: tuple[str, ...], remove: tuple[str, ...], clear: bool
) -> None:
    """Show or change the hostnames DOMAIN accepts events from.

    HOSTNAME is a name like shop.example.com, or *.example.com for every subdomain (not
    example.com itself); www. is ignored, so example.com also covers www.example.com. An
    empty list accepts events from any hostname.
    """
    from app.sites.registry import update_allowed_hostnames

    def run() -> int:
        entries = _with_db(
            lambda sessions: update_allowed_hostnames(
                sessions, domain, add=add, remove=remove, clear=clear
            )
        )
        click.echo("\n".join(entries) if entries else f"{domain}: any hostname is allowed")
        return 0

    guarded(run)


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.option("--email", required=True, help="The user's email address (their login).")
@click.option("--staff", is_flag=True, help="Staff account (the admin section).")
def users_create(email: str, staff: bool) -> None:
    """Create a verified user who owns a new organization.

    The password is asked twice with hidden input, or read from URSA_PASSWORD (for scripts).
    """
    from app.accounts.users import create_user

    def run() -> int:
        password = os.environ.get("URSA_PASSWORD") or click.prompt(
            "Password", hide_input=True, confirmation_prompt=True
        )
        user = _with_db(
            lambda sessions: create_user(sessions, email, password, staff=staff, verified=True)
        )
        kind = "staff user" if user.is_staff else "user"
        click.echo(f"created {kind} {user.email} (id {user.id})")
        return 0

    guarded(run)


@main.group()
def billing() -> None:
    """Staff actions on organizations' plans."""


def _with_billing(action: Callable[[Any, Any], Any]) -> Any:
    """`_with_db` with the ingest path's capacity cache too, when a cache Redis is known
    (`CACHE_REDIS_URL`/`REDIS_URL`, or the running embedded instance's); else None."""
    from app.billing.capacity_cache import CapacityCache
    from app.server.embedded_redis import EmbeddedRedis
    from app.server.instance import running_instance_url
    from app.store.clients import async_client

    settings = load_settings()
    url = settings.cache_redis_url
    if not url and running_instance_url(settings):
        url = EmbeddedRedis(settings.data_dir / "redis").url

    async def go(sessions: Any) -> Any:
        if not url:
            return await action(sessions, None)
        client = async_client(url)
        try:
            return await action(sessions, CapacityCache(client, sessions))
        finally:
            await client.aclose()

    return _with_db(go)


@billing.command("set-plan")
@click.option("--org", "organization_id", required=True, type=int, help="The organization's id.")
@click.option("--plan", "code", required=True, help="free, basic, premium or enterprise.")
def billing_set_plan(organization_id: int, code: str) -> None:
    """Put an organization on a plan by hand (an installation without Stripe, say)."""
    from app.billing.staff import set_plan

    def run() -> int:
        plan = _with_billing(lambda db, cache: set_plan(db, cache, organization_id, code))
        click.echo(f"organization {organization_id} is on the {plan.display_name} plan")
        return 0

    guarded(run)


@billing.command("set-limits")
@click.option("--org", "organization_id", required=True, type=int, help="The organization's id.")
@click.option("--events", type=click.IntRange(min=0), help="Billable events per billing period.")
@click.option("--sites", type=click.IntRange(min=0), help="Sites.")
@click.option("--members", type=click.IntRange(min=0), help="Members and open invitations.")
@click.option("--alerts", type=click.IntRange(min=0), help="Traffic alerts.")
@click.option("--retention-months", type=click.IntRange(min=1), help="Months of data shown.")
def billing_set_limits(
    organization_id: int,
    events: int | None,
    sites: int | None,
    members: int | None,
    alerts: int | None,
    retention_months: int | None,
) -> None:
    """Set an Enterprise organization's own limits (the others stay as they are)."""
    from app.billing.staff import CustomLimits, set_limits

    limits = CustomLimits(events, sites, members, alerts, retention_months)

    def run() -> int:
        _with_billing(lambda db, cache: set_limits(db, cache, organization_id, limits))
        shown = ", ".join(
            f"{name} {value}" for name, value in vars(limits).items() if value is not None
        )
        click.echo(f"organization {organization_id}: {shown}")
        return 0

    guarded(run)


@billing.command("extend-grace")
@click.option("--org", "organization_id", required=True, type=int, help="The organization's id.")
@click.option("--days", required=True, type=int, help="Days added to its grace period.")
def billing_extend_grace(organization_id: int, days: int) -> None:
    """Give an organization over its limit more days before its new events are refused."""
    from app.billing.staff import extend_grace
    from app.models.columns import utcnow

    def run() -> int:
        state = _with_billing(
            lambda db, cache: extend_grace(db, cache, organization_id, days, utcnow())
        )
        ends = f"{state.grace_ends_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"organization {organization_id}: grace period until {ends}")
        return 0

    guarded(run)


@main.group("api-keys")
def api_keys() -> None:
    """Manage Stats API keys."""


@api_keys.command("create")
@click.option("--email", required=True, help="The user the key belongs to.")
@click.option("--name", required=True, help="What the key is for (shown in the key list).")
def api_keys_create(email: str, name: str) -> None:
    """Create a Stats API key and print it (alone on stdout; it is shown only once)."""
    from app.accounts.api_keys import create_key
    from app.accounts.users import get_user_by_email
    from app.errors import NotFound

    async def create(sessions: SessionMaker) -> tuple[Any, str]:
        user = await get_user_by_email(sessions, email)
        if user is None or user.deleted_at is not None:
            raise NotFound(f"no user with the email {email}")
        return await create_key(sessions, user, name)

    def run() -> int:
        key, secret = _with_db(create)
        click.echo(secret)
        click.echo(f"created API key {key.prefix}… ({key.name}) for {email}", err=True)
        return 0

    guarded(run)


@main.command()
@click.argument("domain")
@click.option(
    "--period",
    default="30d",
    show_default=True,
    type=click.Choice([key for key in PERIODS if key != "custom"]),
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="DIMENSION:OPERATOR:VALUE",
    help="Only what matches, as the dashboard's filters (page:is:/pricing); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(domain: str, period: str, filters: tuple[str, ...], as_json: bool) -> None:
    """Aggregate numbers of a site (the dashboard's own queries)."""
    from app.analytics.queries.stats import overview
    from app.dashboard.cards import site_scope
    from app.dashboard.view import View
    from app.server.instance import open_gateway
    from app.sites.registry import get_site

    def run() -> int:
        settings = load_settings().with_secrets()
        view = View.from_query({"period": [period], "f": list(filters)})
        site = _with_db(lambda sessions: get_site(sessions, domain))
        gateway = open_gateway(settings)
        try:
            numbers = overview(gateway, site_scope(gateway, site, view))
        finally:
            gateway.close()
        if as_json:
            click.echo(json.dumps({"site": site.domain, "period": period, **numbers}))
        else:
            for key, value in numbers.items():
                click.echo(f"{key:>15}  {value:,}")
        return 0

    guarded(run)


@main.command("demo-data")
@click.argument("domain")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650))
@click.option("--events", default=100_000, show_default=True, type=click.IntRange(1, 100_000_000))
@click.option("--seed", default=None, type=int, help="Random seed for repeatable data.")
def demo_data(domain: str, days: int, events: int, seed: int | None) -> None:
    """Fill a site with realistic synthetic traffic."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from app.cli.demo import generate
    from app.server.instance import open_gateway
    from app.sites.registry import get_site

    def run() -> int:
        settings = load_settings().with_secrets()
        site = _with_db(lambda sessions: get_site(sessions, domain))
        gateway = open_gateway(settings)
        columns = (
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns) as progress:
                task = progress.add_task(f"demo data for {site.domain}", total=events)
                written = generate(
                    gateway,
                    site.id,
                    days=days,
                    events=events,
                    seed=seed,
                    hostname=site.domain,
                    timezone=site.timezone,
                    on_progress=lambda n: progress.advance(task, n),
                )
        finally:
            gateway.close()
        click.echo(f"wrote {written:,} events to {site.domain}")
        return 0

    guarded(run)


@main.group()
def email() -> None:
    """Email settings."""


@email.command("test")
@click.option("--to", "recipient", required=True, help="Address that receives the test email.")
def email_test(recipient: str) -> None:
    """Send a test email now, without the queue, to check SMTP_URL and DEFAULT_FROM_EMAIL."""
    from pydantic import ValidationError

    from app.mail import compose as mail
    from app.mail.smtp import MailError

    try:
        settings = load_settings()
        outbox = mail.send("test", recipient, {}, settings)
    except (ValidationError, MailError) as exc:
        raise click.ClickException(str(exc)) from None
    if outbox is None:
        click.echo(f"sent a test email to {recipient} through {settings.smtp_server}")
    else:
        click.echo(f"SMTP_URL is not set: the test email was written to {outbox}")


@contextlib.contextmanager
def _step_progress(steps: tuple[str, ...]) -> Iterator[Callable[[str], None]]:
    """A progress bar over named steps; the callback marks the start of one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn()) as progress:
        task = progress.add_task("starting", total=len(steps))

        def on_step(name: str) -> None:
            progress.update(task, completed=steps.index(name), description=name)

        yield on_step
        progress.update(task, completed=len(steps), description="done")


def _echo_counts(manifest: Manifest) -> None:
    for store, counts in (
        ("app database", manifest.app_database),
        ("ClickHouse", manifest.clickhouse),
    ):
        click.echo(f"{store}:")
        for table, rows in counts.items():
            click.echo(f"  {table:<28} {rows:>14,}")


@main.command("backup")
@click.argument("path", type=click.Path(path_type=Path))
def backup_command(path: Path) -> None:
    """Back up the embedded installation into the new directory PATH.

    The app database, the analytics and the generated secrets, with a manifest of rows per
    table. Works whether or not `ursa serve` is running: the event buffer is flushed into
    ClickHouse first, and no Redis data is kept.
    """
    from app.cli.backup import BACKUP_STEPS, backup

    def run() -> int:
        with _step_progress(BACKUP_STEPS) as on_step:
            manifest = backup(load_settings(), path, on_step)
        _echo_counts(manifest)
        click.echo(f"backup written to {path}")
        return 0

    guarded(run)


@main.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a data dir that is not empty, replacing its database, analytics, "
    "buffer and secrets.",
)
def restore_command(path: Path, force: bool) -> None:
    """Restore the backup in PATH into the data dir (empty unless --force; Ursa stopped)."""
    from app.cli.backup import RESTORE_STEPS, restore

    def run() -> int:
        settings = load_settings()
        with _step_progress(RESTORE_STEPS) as on_step:
            manifest = restore(settings, path, force=force, on_step=on_step)
        _echo_counts(manifest)
        click.echo(f"restored the backup of {manifest.created_at} into {settings.data_dir}")
        return 0

    guarded(run)
