"""Process start-up shared by the commands: the private umask, logging, the embedded Redis."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from app.observability import logging as observability_logging
from app.observability.logging import Stream
from app.settings import Settings

log = logging.getLogger(__name__)

# What an `ursa` process creates is for its user alone, whatever umask it was started with:
# files 0600, folders 0700. The data dir holds password hashes, emails, session records and
# buffered events (SQLite, the embedded Redis's AOF, chDB's folders, secrets, the outbox).
PRIVATE_UMASK = 0o077


class ConfigurationError(RuntimeError):
    """The environment does not allow this command to start; the message says what to set."""


def configure_logging(level: str, stream: Stream = "stderr") -> None:
    """Structured, token-redacted logs at `level` (`app.observability.logging`).

    Commands log to stderr, so that their stdout stays their output; service processes (web,
    worker, scheduler, serve) call this again with `"stdout"`, where the platform reads logs.
    """
    observability_logging.configure_logging(level, stream)


def keep_files_private(settings: Settings) -> None:
    """Create everything from now on with `PRIVATE_UMASK` (inherited by the embedded
    redis-server and the HTTP helpers, applied by SQLite and chDB), and, in embedded mode, warn
    when the data dir or an entry of it (made by an earlier version, or by hand) lets the group
    or others in. Distributed processes keep no data there: their volume's modes are the
    platform's (an `emptyDir` is 0777)."""
    os.umask(PRIVATE_UMASK)
    data_dir = settings.data_dir
    exposed = _exposed(data_dir) if settings.embedded else []
    if exposed:
        log.warning(
            "the data dir %s is readable by other users: %s; run: chmod -R go-rwx %s",
            data_dir,
            ", ".join(exposed),
            data_dir,
        )


def _exposed(data_dir: Path) -> list[str]:
    """`data_dir` and its entries whose mode grants the group or others anything, as
    `<path> (<mode>)`: under a folder of 0700, deeper files are out of their reach anyway."""
    if not data_dir.is_dir():
        return []
    exposed = []
    for path in (data_dir, *data_dir.iterdir()):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:  # removed meanwhile, or a dangling link
            continue
        if mode & PRIVATE_UMASK:
            exposed.append(f"{path} ({mode:04o})")
    return exposed
