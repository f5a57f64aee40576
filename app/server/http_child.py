"""The program of one HTTP helper process of `ursa serve` (`app.server.http_helpers`).

Started as `python -m app.server.http_child FD MAIN_PID`: it answers HTTP on the inherited
socket `FD`, reaches ClickHouse through the main process's internal port, and stops when the
main process (`MAIN_PID`) is gone.
"""

from __future__ import annotations

import os
import socket
import sys

from app.analytics.clickhouse.remote import RemoteClickHouse
from app.server.instance import internal_url
from app.server.run import run_event_loop, run_http, web_services
from app.settings import Settings


def helper_main(fd: int, main_pid: int) -> int:
    settings = Settings().with_secrets()

    def main_gone() -> str | None:
        return None if os.getppid() == main_pid else "the ursa serve process is gone; stopping"

    gateway = RemoteClickHouse(internal_url(settings.METRICS_PORT), settings.INTERNAL_TOKEN)
    services = web_services(settings, gateway, "ursa")
    listener = socket.socket(fileno=fd)
    return run_event_loop(
        run_http(settings, services, listener=listener, internal=False, watch=main_gone)
    )


if __name__ == "__main__":
    sys.exit(helper_main(int(sys.argv[1]), int(sys.argv[2])))
