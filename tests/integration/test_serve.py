"""`ursa serve` as a user runs it: embedded Redis, ordered shutdown, restart, CLI alongside."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis

from tests.conftest import free_port
from tests.integration.helpers import BROWSER_UA

pytestmark = pytest.mark.slow
URSA = str(Path(sys.executable).with_name("ursa"))
START_TIMEOUT = 120  # a first start migrates chDB: a minute and more on a busy machine


def _env(data_dir: Path, port: int, internal_port: int, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("URSA_", "REDIS_", "CLICKHOUSE"))
    }
    env.update(
        URSA_DATA_DIR=str(data_dir),
        PORT=str(port),
        METRICS_PORT=str(internal_port),
        BASE_URL=f"http://127.0.0.1:{port}",
        **extra,
    )
    return env


def _run(env: dict[str, str], *args: str, umask: int = -1) -> subprocess.CompletedProcess[str]:
    """`ursa *args`; `umask` sets the process's (-1: this one's)."""
    return subprocess.run(
        [URSA, *args], env=env, capture_output=True, text=True, timeout=120, umask=umask
    )


class Served:
    def __init__(
        self, env: dict[str, str], port: int, stdout: IO[str] | None = None, umask: int = -1
    ) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [URSA, "serve"], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, umask=umask
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.process.kill()  # not left running beside the next tests
        self.process.wait(timeout=30)
        raise AssertionError("ursa serve did not become ready")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stderr


def _stats(env: dict[str, str], domain: str) -> dict[str, int]:
    result = _run(env, "stats", domain, "--period", "7d", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _post(url: str, domain: str, path: str) -> int:
    body = {"n": "pageview", "u": f"https://{domain}{path}", "d": domain}
    response = httpx.post(
        f"{url}/api/event",
        content=json.dumps(body),
        headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain"},
    )
    return response.status_code


def test_serve_lifecycle(tmp_path):
    port, internal = free_port(), free_port()
    env = _env(tmp_path / "data", port, internal)
    assert _run(env, "sites", "add", "serve.example").returncode == 0

    served = Served(env, port)
    secrets_dir = tmp_path / "data" / "secrets"
    assert sorted(p.name for p in secrets_dir.iterdir()) == [
        "hash_key",
        "internal_token",
        "secret_key",
    ]
    buffer = redis.Redis(unix_socket_path=str(tmp_path / "data" / "redis" / "redis.sock"))
    assert buffer.config_get("appendonly") == {"appendonly": "yes"}
    assert buffer.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert int(buffer.config_get("maxmemory")["maxmemory"] or 0) > 0
    buffer.close()

    assert [_post(served.url, "serve.example", p) for p in ("/", "/a", "/b")] == [202] * 3
    deadline = time.monotonic() + 20
    while _stats(env, "serve.example")["pageviews"] < 3:  # through the running instance
        assert time.monotonic() < deadline, "events did not reach ClickHouse"
        time.sleep(0.5)

    demo = _run(env, "demo-data", "serve.example", "--days", "1", "--events", "2000", "--seed", "7")
    assert demo.returncode == 0, demo.stderr  # through the running instance: no lock error
    assert _stats(env, "serve.example")["events"] >= 2003

    before_stop = _stats(env, "serve.example")
    assert _post(served.url, "serve.example", "/c") == 202
    code, stderr = served.stop()  # Ctrl-C right after an event: the final flush keeps it
    assert code == 0, stderr
    assert not (tmp_path / "data" / "instance.json").exists()
    after_stop = _stats(env, "serve.example")  # engine opened by the CLI itself
    assert after_stop["events"] == before_stop["events"] + 1

    served = Served(env, port)  # restart on the same data dir
    assert _stats(env, "serve.example") == after_stop
    code, stderr = served.stop(signal.SIGTERM)
    assert code == 0, stderr


def test_serve_says_what_it_does_while_it_starts_and_stops(tmp_path):
    """Starting takes seconds, stopping flushes the buffer: each step logs a line, in order."""
    port, internal = free_port(), free_port()
    data = (tmp_path / "data").resolve()
    # One process (no helper saying the same), no flush tick: the final flush has the events.
    extra = {"HTTP_PROCESSES": "1", "FLUSH_INTERVAL_SECONDS": "3600", "WORKER_THREADS": "2"}
    env = _env(data, port, internal, **extra)
    assert _run(env, "sites", "add", "steps.example").returncode == 0
    with (tmp_path / "serve.log").open("w") as log:
        served = Served(env, port, stdout=log)
        assert [_post(served.url, "steps.example", p) for p in ("/", "/a", "/b")] == [202] * 3
        code, stderr = served.stop()
    assert code == 0, stderr
    log_lines = (tmp_path / "serve.log").read_text().splitlines()
    said = [json.loads(line)["event"] for line in log_lines]  # not a terminal: JSON lines
    steps = [
        f"loading Ursa (data in {data})…",
        f"starting redis-server in {data / 'redis'}…",
        "migrating the app database…",
        f"opening ClickHouse at {data / 'clickhouse'}…",
        "starting the worker (2 threads) and the scheduler…",
        f"Ursa is listening on http://127.0.0.1:{port} (pid {served.process.pid})",
        "stopping: no new requests, finishing the open ones…",
        "flushing 3 buffered events into ClickHouse…",
        "flushed 3 buffered events into ClickHouse",
        "Ursa stopped",
    ]
    assert [message for message in said if message in steps] == steps, said


# The umask most systems give a login shell: new files 0644, new folders 0755.
COMMON_UMASK = 0o022


def _modes(folder: Path) -> dict[str, str]:
    """`folder` and every folder and file under it, with its kind and permission bits: `d0700`,
    `f0644`… (sockets aside, and symbolic links, whose own modes mean nothing: chDB links
    tables into its store)."""
    modes = {}
    for path in [folder, *folder.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a temporary file of a running engine, gone meanwhile
            continue
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            kind = "d" if stat.S_ISDIR(mode) else "f"
            modes[str(path.relative_to(folder))] = f"{kind}{stat.S_IMODE(mode):04o}"
    return modes


def test_serve_keeps_its_data_to_its_user(tmp_path):
    """Under umask 022, still nobody but Ursa's user reads the data dir: folders 0700 and files
    0600, the SQLite database, the embedded Redis's AOF and chDB's folders included."""
    data = tmp_path / "data"
    port, internal = free_port(), free_port()
    env = _env(data, port, internal)
    assert _run(env, "sites", "add", "modes.example", umask=COMMON_UMASK).returncode == 0
    served = Served(env, port, umask=COMMON_UMASK)
    try:
        assert [_post(served.url, "modes.example", f"/{n}") for n in range(3)] == [202] * 3
        deadline = time.monotonic() + 30
        while _stats(env, "modes.example")["pageviews"] < 3:  # in ClickHouse: parts on disk
            assert time.monotonic() < deadline, "events did not reach ClickHouse"
            time.sleep(0.5)
        modes = _modes(data)  # while it runs: SQLite's WAL files exist too
    finally:
        code, stderr = served.stop()
    assert {"ursa.db", "clickhouse", "redis", "secrets"} <= set(modes)
    assert any(name.startswith("redis/appendonly") for name in modes)  # the AOF
    assert any(name.startswith("clickhouse/") for name in modes)
    assert {name: mode for name, mode in modes.items() if mode not in ("d0700", "f0600")} == {}
    assert code == 0, stderr
    assert "readable by other users" not in stderr


def test_a_data_dir_others_can_read_is_reported(tmp_path):
    data = tmp_path / "data"
    env = _env(data, free_port(), free_port())
    assert _run(env, "sites", "add", "wide.example").returncode == 0
    data.chmod(0o755)
    (data / "ursa.db").chmod(0o644)
    listed = _run(env, "sites", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{data} (0755)" in listed.stderr
    assert f"{data / 'ursa.db'} (0644)" in listed.stderr
    assert f"chmod -R go-rwx {data}" in listed.stderr

    subprocess.run(["chmod", "-R", "go-rwx", str(data)], check=True)  # as the warning says
    listed = _run(env, "sites", "list")
    assert listed.returncode == 0, listed.stderr
    assert "readable by other users" not in listed.stderr


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def _helper_pids(served: Served) -> list[int]:
    return [pid for pid in _pids("-m app.server.http_child") if _stat(pid)[1] == served.process.pid]


def _stat(pid: int) -> tuple[str, int]:
    """State and parent of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _wait_gone(pids: list[int], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and _stat(pid)[0] != "Z":
            assert time.monotonic() < deadline, f"process {pid} is still running"
            time.sleep(0.2)


def _requests_counted(internal_port: int, route: str) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{internal_port}/metrics").text
    prefix = f'ursa_http_request_duration_seconds_count{{method="GET",route="{route}"'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix)
    )


def _listening(port: int) -> int:
    """How many sockets listen on `port` (IPv4)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A"
    )


def test_serve_answers_from_several_processes(tmp_path):
    port, internal = free_port(), free_port()
    served = Served(_env(tmp_path / "data", port, internal, HTTP_PROCESSES="3"), port)
    assert len(_helper_pids(served)) == 2
    deadline = time.monotonic() + START_TIMEOUT
    while _listening(port) < 3:  # each helper listens once it is ready
        assert time.monotonic() < deadline, "the helpers did not start listening"
        time.sleep(0.2)
    # Each request on a new connection: the kernel spreads connections over the processes.
    # `/readyz` queries ClickHouse, which helpers reach through the internal port.
    answers = [httpx.get(f"{served.url}/readyz").json()["checks"] for _ in range(40)]
    assert all(checks["clickhouse"] == "ok" for checks in answers)
    assert 1 <= _requests_counted(internal, "/readyz") < 40  # the rest went to the helpers
    helpers = _helper_pids(served)
    code, stderr = served.stop()
    assert code == 0, stderr
    _wait_gone(helpers, timeout=0)  # stopped before ursa serve exited


@pytest.mark.parametrize("victim", ["redis-server", "http process"])
def test_serve_exits_when_a_child_dies(tmp_path, victim):
    port, internal = free_port(), free_port()
    served = Served(_env(tmp_path / "data", port, internal), port)
    helpers = _helper_pids(served)
    (pid,) = _pids(str(tmp_path / "data" / "redis")) if victim == "redis-server" else helpers
    os.kill(pid, signal.SIGKILL)
    served.process.wait(timeout=30)
    assert served.process.returncode == 1
    expected = "redis-server died" if victim == "redis-server" else f"(pid {pid}) exited with -9"
    assert expected in served.process.stderr.read()  # type: ignore[union-attr]
    _wait_gone(helpers, timeout=0)


def test_a_killed_serve_restarts_without_losing_events(tmp_path):
    port, internal = free_port(), free_port()
    env = _env(tmp_path / "data", port, internal)
    assert _run(env, "sites", "add", "killed.example").returncode == 0
    served = Served(env, port)
    (helper,) = _helper_pids(served)
    (leftover,) = _pids(str(tmp_path / "data" / "redis"))
    assert [_post(served.url, "killed.example", f"/{n}") for n in range(30)] == [202] * 30
    served.process.kill()  # no ordered stop: its redis-server and its helper stay behind
    served.process.wait(timeout=10)
    _wait_gone([helper])  # the helper noticed by itself

    served = Served(env, port)  # the leftover redis-server holds the AOF and the buffer
    _wait_gone([leftover], timeout=0)  # shut down before ours started, not appending beside it
    deadline = time.monotonic() + 30
    while _stats(env, "killed.example")["pageviews"] < 30:
        assert time.monotonic() < deadline, "events buffered before the kill did not arrive"
        time.sleep(0.5)
    assert _stats(env, "killed.example")["pageviews"] == 30
    code, stderr = served.stop(signal.SIGHUP)  # its terminal closed: an orderly stop too
    assert code == 0, stderr
    assert not (tmp_path / "data" / "instance.json").exists()


def test_distributed_mode_requires_secrets(tmp_path):
    env = _env(
        tmp_path / "data",
        free_port(),
        free_port(),
        CLICKHOUSE_URL="http://127.0.0.1:9",
        REDIS_URL="redis://127.0.0.1:9",
    )
    result = _run(env, "web")
    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr


ENQUEUE_FROM_A_WEB_PROCESS = """
import sys
from app.server.run import web_services
from app.settings import Settings
from app.tasks.account_jobs import send_verification

web_services(Settings.model_validate_json(sys.stdin.read()), None, "ursa-web")
send_verification.send(1, "/")
"""


def test_web_processes_enqueue_jobs_to_redis(settings):
    # `ursa web` and the helpers of `ursa serve` run no worker: their jobs (emails) must reach
    # the Redis queue the workers read, not a queue in the process's memory.
    buffer = redis.Redis.from_url(settings.REDIS_URL)
    buffer.delete("dramatiq:email")
    result = subprocess.run(
        [sys.executable, "-c", ENQUEUE_FROM_A_WEB_PROCESS],
        input=settings.model_dump_json(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert buffer.llen("dramatiq:email") == 1
    buffer.close()
