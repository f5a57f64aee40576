"""Typed settings: one class, one section per subsystem, every field mirrored in `.env.example`.

Embedded mode (no `REDIS_URL`, no `CLICKHOUSE_URL`) keeps everything under `URSA_DATA_DIR` and
generates the secrets it needs once into that directory. Distributed mode takes them from the
environment and refuses to start without them (`MissingSecretError` names the variable).
"""

from __future__ import annotations

import ipaddress
import secrets
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.mail.smtp import SmtpServer

SECRET_NAMES = ("SECRET_KEY", "HASH_KEY", "INTERNAL_TOKEN")


class MissingSecretError(RuntimeError):
    """A secret that distributed mode requires is not set in the environment."""


class Settings(BaseSettings):
    """Every setting Ursa reads, from the environment or a `.env` file."""

    # Validation errors never echo a value: SMTP_URL and CLICKHOUSE_URL may hold passwords.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # --- storage locations ---
    URSA_DATA_DIR: Path = Field(
        Path("./data"),
        description="Directory for embedded data: chDB, SQLite, redis AOF, generated secrets.",
    )
    DATABASE_URL: str = Field(
        "",
        description="App database (SQLAlchemy async URL). Empty: SQLite in the data dir.",
    )
    CLICKHOUSE_URL: str = Field(
        "",
        description="ClickHouse server URL (https://user:pass@host:8443/db). Empty: embedded chDB.",
    )
    CLICKHOUSE_CLUSTER: str = Field(
        "", description="ClickHouse cluster name for ON CLUSTER DDL. Empty: single node."
    )
    REDIS_URL: str = Field(
        "",
        description="Redis for the event buffer, queue and locks. Empty: start redis-server.",
    )
    CACHE_REDIS_URL: str = Field(
        "", description="Redis for caches (every key has a TTL). Empty: same as REDIS_URL."
    )
    REDIS_MAXMEMORY: str = Field(
        "512mb", description="maxmemory of the embedded redis-server (policy is noeviction)."
    )

    # --- http ---
    HOST: str = Field("127.0.0.1", description="Address the public web server binds.")
    PORT: int = Field(8000, description="Port of the public web server.")
    HTTP_PROCESSES: int = Field(
        2,
        ge=1,
        description="Processes answering HTTP in `ursa serve`: the main one (ClickHouse, worker) "
        "and HTTP_PROCESSES-1 more on the same port. `ursa web` is one; scale it by replicas.",
    )
    METRICS_HOST: str = Field(
        "127.0.0.1",
        description="Address of the internal listener. 0.0.0.0 in a cluster, so the monitoring "
        "agent can scrape /metrics (machine endpoints still need INTERNAL_TOKEN).",
    )
    METRICS_PORT: int = Field(
        8001,
        description="Port of the internal listener: Prometheus /metrics and the machine "
        "endpoints CLI commands use.",
    )
    BASE_URL: str = Field(
        "http://127.0.0.1:8000", description="Public URL of this installation (embed snippets)."
    )
    TRUSTED_PROXIES: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto "
        "we trust. Behind them the client is the right-most X-Forwarded-For entry, over all its "
        "lines, that is not one of them.",
    )

    # --- secrets ---
    SECRET_KEY: str = Field("", description="Signs sessions and CSRF tokens. Embedded: generated.")
    HASH_KEY: str = Field("", description="Keys the daily visitor-hash salts. Embedded: generated.")
    INTERNAL_TOKEN: str = Field(
        "", description="Bearer token of the internal port. Embedded: generated."
    )

    # --- accounts ---
    SESSION_COOKIE_SECURE: bool = Field(
        True,
        description="Mark cookies Secure and __Host- prefixed. false only for plain http on a "
        "host other than localhost (browsers reject Secure cookies there).",
    )
    SESSION_IDLE_HOURS: int = Field(
        168, description="A login session ends after this many hours without a request."
    )
    SESSION_MAX_DAYS: int = Field(
        30, description="A login session ends this many days after login."
    )
    INVITE_ONLY: bool = Field(False, description="true: sign-up is open to invited emails only.")

    # --- ingestion ---
    GEOIP_DB: str = Field(
        "", description="Path to a MaxMind-format .mmdb (country/city). Empty: built-in country."
    )
    BUFFER_STREAM: str = Field("ursa:events", description="Redis stream that buffers events.")
    FLUSH_BATCH_SIZE: int = Field(50000, description="Events per ClickHouse insert.")
    FLUSH_INTERVAL_SECONDS: float = Field(1.0, description="Flush tick (seconds).")
    SITE_CACHE_SECONDS: int = Field(60, description="How long a site-by-domain lookup is cached.")
    INGEST_CLIENT_EVENTS_PER_MINUTE: int = Field(
        600,
        ge=0,
        description="Events one client address may send per minute and web process; more are "
        "dropped (202, x-ursa-dropped: rate). 0: no cap.",
    )
    INGEST_SITE_EVENTS_PER_MINUTE: int = Field(
        300_000,
        ge=0,
        description="Events one site may receive per minute and web process; more are dropped "
        "(202, x-ursa-dropped: rate). 0: no cap.",
    )

    # --- jobs ---
    WORKER_THREADS: int = Field(2, description="Dramatiq worker threads per process.")
    WORKER_UNHEALTHY_EXIT_SECONDS: float = Field(
        60.0,
        gt=0,
        description="A worker (or the scheduler) exits, to be restarted, once a dependency "
        "(Redis or ClickHouse; the scheduler's is Redis) has been unreachable this long.",
    )

    # --- email ---
    SMTP_URL: SecretStr = Field(
        SecretStr(""),
        description="SMTP server: smtp+starttls://user:pass@host:587, smtps://… (implicit TLS) "
        "or smtp://host:25 (no TLS). Empty: emails go to the data dir's outbox/ as .eml files.",
    )
    DEFAULT_FROM_EMAIL: str = Field(
        "Ursa <noreply@localhost>", description="Sender (From header) of every email."
    )

    # --- billing ---
    STRIPE_SECRET_KEY: SecretStr = Field(
        SecretStr(""),
        description="Stripe secret API key (sk_live_…/sk_test_…). Empty: billing is not "
        "configured and every organization stays on its plan's limits (free by default).",
    )
    STRIPE_WEBHOOK_SECRET: SecretStr = Field(
        SecretStr(""),
        description="Signing secret (whsec_…) of the Stripe webhook endpoint POST "
        "/billing/webhook. Empty: every webhook is refused (400).",
    )
    STRIPE_API_BASE: str = Field(
        "https://api.stripe.com",
        description="Base URL of Stripe's API (tests point it at a local server).",
    )
    STRIPE_PRICE_BASIC_MONTHLY: str = Field(
        "", description="Stripe price id (price_…) of the Basic plan, billed monthly."
    )
    STRIPE_PRICE_BASIC_YEARLY: str = Field(
        "", description="Stripe price id of the Basic plan, billed yearly."
    )
    STRIPE_PRICE_PREMIUM_MONTHLY: str = Field(
        "", description="Stripe price id of the Premium plan, billed monthly."
    )
    STRIPE_PRICE_PREMIUM_YEARLY: str = Field(
        "", description="Stripe price id of the Premium plan, billed yearly."
    )
    CAPACITY_GRACE_DAYS: int = Field(
        7,
        ge=0,
        description="Days an organization over its plan's monthly events keeps collecting "
        "before new events are refused (202, `x-ursa-dropped: over_limit`).",
    )

    # --- logging, errors, tracing ---
    LOG_LEVEL: str = Field("INFO", description="Python log level.")
    RELEASE: str = Field(
        "dev", description="Version of this deployment (the image tag): tags errors and traces."
    )
    SENTRY_DSN: SecretStr = Field(
        SecretStr(""), description="Sentry DSN: errors are reported there. Empty: not reported."
    )
    SENTRY_TRACES_SAMPLE_RATE: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of requests Sentry traces (0 to 1)."
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(
        "",
        description="OTLP/HTTP endpoint (http://collector:4318) for traces and metrics. Empty: "
        "no export.",
    )
    OTEL_TRACES_SAMPLER_ARG: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of new traces sampled (parent-based)."
    )

    @field_validator("TRUSTED_PROXIES", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("TRUSTED_PROXIES")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("SMTP_URL")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            SmtpServer.from_url(value.get_secret_value())  # fail at start, not at the first email
        return value

    @field_validator("DEFAULT_FROM_EMAIL")
    @classmethod
    def _check_from_email(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError("DEFAULT_FROM_EMAIL must be an address: Name <user@example.com>")
        return value

    @property
    def embedded(self) -> bool:
        """True when Ursa runs its own engine(s) under the data dir."""
        return not self.CLICKHOUSE_URL

    @property
    def data_dir(self) -> Path:
        return self.URSA_DATA_DIR.resolve()

    @property
    def clickhouse_dsn(self) -> str:
        return self.CLICKHOUSE_URL or f"chdb:///{self.data_dir / 'clickhouse'}"

    @property
    def clickhouse_location(self) -> str:
        """Where ClickHouse is, for messages: the chDB folder, or the server's host and port
        (never the credentials `CLICKHOUSE_URL` may hold)."""
        if self.embedded:
            return str(self.data_dir / "clickhouse")
        return urlsplit(self.CLICKHOUSE_URL).netloc.rpartition("@")[2]

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite+aiosqlite:///{self.data_dir / 'ursa.db'}"

    @property
    def cache_redis_url(self) -> str:
        return self.CACHE_REDIS_URL or self.REDIS_URL

    @property
    def smtp_server(self) -> SmtpServer | None:
        """The parsed `SMTP_URL`; None when it is empty (emails then go to the outbox)."""
        url = self.SMTP_URL.get_secret_value()
        return SmtpServer.from_url(url) if url else None

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.TRUSTED_PROXIES)

    def with_secrets(self) -> Settings:
        """Return settings whose secrets are all set.

        Embedded: missing ones are generated once into `<data dir>/secrets/`. Distributed:
        raise `MissingSecretError` naming the first missing variable.
        """
        values: dict[str, str] = {}
        for name in SECRET_NAMES:
            current = getattr(self, name)
            if current:
                continue
            if not self.embedded:
                raise MissingSecretError(
                    f"{name} is not set. Distributed mode (CLICKHOUSE_URL set) needs it in the "
                    f"environment; generate one with: python -c 'import secrets; "
                    f"print(secrets.token_urlsafe(48))'"
                )
            values[name] = _generated_secret(self.data_dir / "secrets", name)
        return self.model_copy(update=values) if values else self


def _generated_secret(folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name.lower()
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
