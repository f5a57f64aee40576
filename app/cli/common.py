"""What the command modules share: loading settings, and one clear line for expected failures."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from app.analytics.clickhouse.gateway import ClickHouseError
from app.errors import AppError
from app.server.startup import ConfigurationError, configure_logging, keep_files_private
from app.settings import MissingSecretError, Settings


def load_settings() -> Settings:
    """The settings of this command, with logging configured and the private umask set."""
    settings = Settings()
    configure_logging(settings.LOG_LEVEL)
    keep_files_private(settings)  # before anything is created
    return settings


def fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


def guarded(run: Callable[[], int | None]) -> None:
    """Run a command body, turning expected failures into one clear line and exit code 2."""
    try:
        code = run()
    except (MissingSecretError, ConfigurationError, ClickHouseError, AppError) as exc:
        fail(str(exc))
    else:
        sys.exit(code or 0)
