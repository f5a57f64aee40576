"""End-to-end helpers: a real `ursa serve` process, a static site for test pages, polling.

Nothing here imports the app's web stack: the instance is a subprocess reached over HTTP, and
ClickHouse is read through that instance's internal port, as the CLI does.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import html5lib
import httpx
from playwright.sync_api import Page

from app.analytics.clickhouse.remote import RemoteClickHouse
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period

E2E_DIR = Path(__file__).resolve().parent
PAGES_DIR = E2E_DIR / "pages"
NPM_TRACKER = E2E_DIR / "npm" / "node_modules" / "@plausible-analytics" / "tracker" / "plausible.js"
ARTIFACTS_DIR = E2E_DIR.parents[1] / "test-artifacts"

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 60.0
# Settings the instance must not inherit from the developer's environment: they would switch
# it to distributed mode or to someone else's secrets.
INHERITED_SETTINGS = (
    "DATABASE_URL",
    "CLICKHOUSE_URL",
    "CLICKHOUSE_CLUSTER",
    "REDIS_URL",
    "CACHE_REDIS_URL",
    "SECRET_KEY",
    "HASH_KEY",
    "INTERNAL_TOKEN",
    "TRUSTED_PROXIES",
    "GEOIP_DB",
    "BUFFER_STREAM",
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ursa_command() -> list[str]:
    """The installed `ursa` console script of this environment (or its entry point)."""
    script = Path(sys.executable).parent / "ursa"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from app.cli.commands import main; sys.exit(main())"]


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float = 20.0,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call `probe` until `done(value)`; fail with the last value seen after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; last seen: {value!r}"
            )
        time.sleep(interval)


# --- the Ursa instance -----------------------------------------------------------------------


@dataclass
class UrsaInstance:
    """One `ursa serve` subprocess on free ports with its own data directory."""

    folder: Path
    port: int = field(default_factory=free_port)
    internal_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    site_ids: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    _session_cookie: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "serve.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in INHERITED_SETTINGS}
        env.update(
            URSA_DATA_DIR=str(self.data_dir),
            HOST="127.0.0.1",
            PORT=str(self.port),
            METRICS_PORT=str(self.internal_port),
            BASE_URL=self.url,
            LOG_LEVEL="INFO",
            FLUSH_INTERVAL_SECONDS="0.5",  # events reach the dashboard sooner
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `ursa ARGS` against this instance's data directory; it must succeed."""
        return self.cli_many([list(args)], timeout=timeout)[0]

    def cli_many(
        self, commands: list[list[str]], timeout: float = 60.0
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several `ursa` commands at once (cwd: the test folder, so no stray `.env`)."""
        running = [
            (
                args,
                subprocess.Popen(
                    [*ursa_command(), *args],
                    env=self.env(),
                    cwd=self.folder,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for args in commands
        ]
        results = []
        for args, process in running:
            stdout, stderr = process.communicate(timeout=timeout)
            assert process.returncode == 0, (
                f"ursa {' '.join(args)} exited {process.returncode}:\n{stdout}{stderr}"
            )
            results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
        return results

    def add_user(self, email: str, password: str) -> None:
        """A verified user who owns an organization (`ursa users create`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.extra_env["URSA_PASSWORD"] = password
        try:
            self.cli("users", "create", "--email", email)
        finally:
            del self.extra_env["URSA_PASSWORD"]

    def add_sites(self, *domains: str, owner: str) -> None:
        """Register sites of `owner`'s organization (SQLite: also while the instance runs)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        results = self.cli_many([["sites", "add", domain, "--owner", owner] for domain in domains])
        for domain, result in zip(domains, results, strict=True):
            found = re.search(rf"added {re.escape(domain)} \(id (\d+)\)", result.stdout)
            assert found, result.stdout
            self.site_ids[domain] = int(found.group(1))

    def start(self) -> None:
        """Launch `ursa serve` (see `wait_ready`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*ursa_command(), "serve"],
                env=self.env(),
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the test terminal is ours to forward
            )

    def wait_ready(self) -> None:
        """Wait until `/readyz` answers 200 (fail early if the process exits)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"ursa serve exited {self.process.returncode} while starting:\n{self.log()}"
                    )
                try:
                    if client.get(f"{self.url}/readyz").status_code == HTTPStatus.OK:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(
            f"ursa serve was not ready within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log()}"
        )

    def stop(self) -> int:
        """Ctrl-C the instance and wait for its orderly exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"ursa serve did not stop within {STOP_TIMEOUT_SECONDS:.0f}"
                    f" s of SIGINT:\n{self.log()}"
                ) from None
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_in(self, email: str, password: str) -> None:
        """Log in over HTTP; later `card` calls carry the session cookie.

        httpx keeps `Secure` cookies away from plain http (browsers make an exception for
        localhost), so the cookies are passed by hand.
        """
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token, page.text
            form = {"email": email, "password": password, "csrf_token": token[1]}
            answer = client.post("/login", data=form, headers={"Cookie": _cookies(page)})
        assert answer.status_code == HTTPStatus.SEE_OTHER, answer.text
        self._session_cookie = _cookies(answer)

    def card(self, domain: str, name: str, period: str = "today") -> ET.Element:
        """One dashboard card (the htmx partial), parsed."""
        response = httpx.get(
            f"{self.url}/{domain}/cards/{name}",
            params={"period": period},
            headers={"Cookie": self._session_cookie},
            timeout=10.0,
        )
        assert response.status_code == HTTPStatus.OK, (name, response.status_code, response.text)
        return parse_html(response.text)

    @contextmanager
    def clickhouse(self) -> Iterator[RemoteClickHouse]:
        """ClickHouse through the internal port, authenticated like the CLI."""
        token = (self.data_dir / "secrets" / "internal_token").read_text().strip()
        gateway = RemoteClickHouse(f"http://127.0.0.1:{self.internal_port}", token)
        try:
            yield gateway
        finally:
            gateway.close()

    def overview(self, site_id: int, period: str = "today") -> dict[str, int]:
        """The numbers `ursa stats` prints, computed here through the internal port."""
        selected = resolve_period(period, "UTC", dt.datetime.now(dt.UTC))
        with self.clickhouse() as gateway:
            return stats.overview(gateway, stats.Scope(site_id, selected))

    def events(self, site_id: int) -> list[dict[str, Any]]:
        """Every stored event of a site (oldest first)."""
        with self.clickhouse() as gateway:
            return gateway.query(
                "e2e_events",
                "SELECT name, pathname, hostname, props, revenue, revenue_currency, browser, "
                "interactive FROM events WHERE site_id = {site:UInt32} ORDER BY event_id",
                {"site": site_id},
            )


# --- reading dashboard cards -----------------------------------------------------------------


def _cookies(response: httpx.Response) -> str:
    """The cookies a response sets, as a `Cookie` request header."""
    pairs = [value.split(";", 1)[0] for value in response.headers.get_list("set-cookie")]
    return "; ".join(pairs)


def parse_html(markup: str) -> ET.Element:
    fragment: ET.Element = html5lib.parseFragment(
        markup, treebuilder="etree", namespaceHTMLElements=False
    )
    return fragment


def text_of(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def by_attribute(root: ET.Element, attribute: str) -> dict[str, str]:
    """{attribute value: element text} for every element carrying `attribute`."""
    return {el.attrib[attribute]: text_of(el) for el in root.iter() if attribute in el.attrib}


def number(text: str) -> int:
    digits = text.replace(",", "").strip()
    return int(digits) if digits.isdigit() else -1


def overview(ursa: UrsaInstance, domain: str) -> dict[str, str]:
    return by_attribute(ursa.card(domain, "overview"), "data-metric")


def breakdown_labels(ursa: UrsaInstance, domain: str, card: str) -> list[str]:
    root = ursa.card(domain, card)
    return [text_of(el) for el in root.iter() if "label" in el.attrib.get("class", "").split()]


def vitals(ursa: UrsaInstance, domain: str) -> dict[str, str]:
    return by_attribute(ursa.card(domain, "vitals"), "data-vital")


# --- the static site that embeds the trackers ------------------------------------------------


class StaticSite:
    """Serves tests/e2e/pages on a loopback port, with the Ursa origin templated in.

    `/docs` is never fetched (the page pushes it with history.pushState); `/vendor/plausible.js`
    is the published npm tracker. Nothing here sets cookies.
    """

    def __init__(self, ursa_origin: str) -> None:
        self.ursa_origin = ursa_origin
        self.extra_pages: dict[str, str] = {}  # path → HTML, e.g. a page with a copied snippet
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, content_type = site.resolve(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_host_url(self) -> str:
        """The same server under another host name: links there are outbound."""
        return f"http://localhost:{self.port}"

    def resolve(self, path: str) -> tuple[bytes | None, str]:
        if path == "/vendor/plausible.js":
            return NPM_TRACKER.read_bytes(), "text/javascript; charset=utf-8"
        if path in self.extra_pages:
            return self.extra_pages[path].encode(), "text/html; charset=utf-8"
        name = path.lstrip("/")
        page = PAGES_DIR / name
        if not name.endswith(".html") or "/" in name or not page.is_file():
            return None, ""
        html = (
            page.read_text()
            .replace("{{ursa_origin}}", self.ursa_origin)
            .replace("{{outbound_url}}", f"{self.other_host_url}/elsewhere.html")
        )
        return html.encode(), "text/html; charset=utf-8"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def wait_for_cards(page: Page) -> None:
    """Every htmx card has replaced its placeholder."""
    page.wait_for_function(
        "() => document.querySelectorAll('.card').length > 0"
        " && !document.querySelector('.card .loading, .htmx-request')"
        " && !document.body.innerText.includes('Loading…')"
    )
